//! `parse_feed` on arbitrary bytes, then matching the result against a small BOM: errors are
//! fine, panics are not.
#![no_main]

use std::path::Path;

use bom::Bom;
use bom::scan::feed::parse_feed;
use bom::scan::matcher::scan;
use libfuzzer_sys::fuzz_target;

const BOM: &str = r#"{"format": "nodeimg-bom", "version": 1,
  "inputs": {"image": "t", "distro": "debian-12", "nodeimg_version": "0", "spec_sha256": "a",
             "lock_sha256": "b", "base_image_sha256": "c"},
  "os": {"os_release": {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"},
         "kernel_release": "k", "kernel_cmdline": "c"},
  "packages": [{"name": "bash", "version": "5.2.15-2+b7", "architecture": "amd64",
                "source": "bash", "source_version": "5.2.15-2", "held": false},
               {"name": "runc", "version": "1:1.1~rc1-1", "architecture": "amd64",
                "source": "runc", "source_version": "1:1.1~rc1-1", "held": false}],
  "components": [{"name": "kubelet", "version": "v1.28.3", "path": "/usr/bin/kubelet",
                  "sha256": "d", "source": "s"},
                 {"name": "runc", "version": "v1.2.0-rc.1", "path": "/usr/bin/runc",
                  "sha256": "d", "source": "s"}],
  "images": [], "config": {"sysctls": {}, "modules": {}, "containerd": {}}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(feed) = parse_feed(Path::new("feed.json"), data) else {
        return;
    };
    let bom = Bom::parse(Path::new("bom.json"), BOM.as_bytes()).expect("the fixed BOM parses");
    let _ = scan(&bom, &[feed]);
});
