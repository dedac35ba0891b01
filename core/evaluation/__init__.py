"""The evaluation core: encounter and claim-line types, rule kinds, policies, the plugin host, the engine.

It owns everything needed to turn one :class:`~payerpolicy.evaluation.model.Encounter` into one
:class:`~payerpolicy.evaluation.model.Outcome` per payer: the value types (``model``), the vocabulary
and code catalogue (``vocab``, ``codeset``), time-to-units rules (``units``), rule kinds and their
context (``kinds``), the loaded policy's value types (``rules``), the policy loader and validator (``policy``), the hook specifications
(``hookspecs``), the pluggy host (``manager``), the builtin rule-kind library (``library``), the engine
(``engine``), dotted-path helpers (``paths``) and the error types (``errors``).

Layer: the bottom one; it imports nothing else from payerpolicy (the NCCI rule kinds are found at
run time as a builtin plugin module, by name). Inside it the order is errors, vocab → codeset, paths,
units → model → rules → kinds → policy → hookspecs → manager → library, engine.
"""
