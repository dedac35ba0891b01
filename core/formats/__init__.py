"""Interchange formats: the ways an encounter comes in and an outcome goes out.

``io`` reads JSON and TOML encounter files with file/position errors; ``schema`` holds the JSON
Schemas of encounter and outcome format v1 and the OpenAPI document; ``fhir`` maps a FHIR R4 Claim to
an encounter and outcomes to Claim/ClaimResponse (extra ``fhir``); ``x12`` writes ASC X12 837P,
``x12_in`` reads 837P files with many claims and ``x12_synth`` writes synthetic ones.

Layer: imports only :mod:`payerpolicy.evaluation`; batch, views, the service and the CLI use it.
"""
