//! Scan loaders (MedMNIST .npz, NIfTI-1, DICOM, raw volumes).
