import sys
from pathlib import Path

# Let e2e test modules import the sibling `keyguard_process` module.
sys.path.insert(0, str(Path(__file__).parent))
