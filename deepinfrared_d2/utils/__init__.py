"""Small utilities shared by tools: FLOP counting."""
