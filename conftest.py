"""Settings every test shares (tests/ and projects/): randomness that cannot fail CI by chance.

- Hypothesis runs the "ci" profile unless HYPOTHESIS_PROFILE says otherwise: derandomized (the
  examples are a function of the test alone, so a green run stays green) and without an example
  database; each test's own ``@settings(max_examples=...)`` fixes how many. ``make fuzz`` runs
  the property tests under the "explore" profile, several rounds of fresh random examples, to look
  for new failures; a failure prints the blob that reproduces it (``@reproduce_failure``).
- Every test starts from the same state of Python's, NumPy's and torch's global generators, so
  a test that draws from them without seeding draws the same numbers in every run and order.
"""
import os
import random

import numpy as np
import pytest
import torch
from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seed_global_generators():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
