"""Tests of the Helm umbrella chart helm/dox-asdlc, on its rendered and parsed objects."""
