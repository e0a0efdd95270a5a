//! Cl(3,0) multivectors and scan features.
