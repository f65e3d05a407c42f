//! QMP (in progress).
