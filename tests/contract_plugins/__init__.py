"""Plugins for testing the contract kit (bhhub.testing.ehr): one that keeps the contract
(``good_visits``) and six that each break it the way vendors' plugins did."""
