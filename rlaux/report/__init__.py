"""From finished runs to the paper's figures and tables: collect -> figures, tables."""
