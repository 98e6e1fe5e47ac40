//! smidl FHE engine (work in progress).
