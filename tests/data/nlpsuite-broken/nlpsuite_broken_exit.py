import sys

sys.exit(3)  # a plugin that ends the process at import must not end nlpsuite
