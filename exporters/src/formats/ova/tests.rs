//! OVA tests.
