//! AWS: `aws-import.json` (import-snapshot disk container) and `register-image.json`
//! (register-image input with a placeholder snapshot id) next to the VMDK. (Stub.)
