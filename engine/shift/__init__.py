"""Shift lab (paper Sec. 4.1, Table 2): AugShift, BlurPool and shift consistency."""
