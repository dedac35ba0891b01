"""payerpolicy plugin for Regional Blue, a fictional regional plan (payer id ``regional_blue``)."""
