"""Builds the lab report (DOCX) and the code archive (ZIP) from the repository.

Run through `scripts/report`; `python3 -m reportgen --help` lists the options.
"""
