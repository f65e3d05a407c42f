use super::*;

const MANIFEST: &str = r#"package image

func initReg() RegistryList {
	registry := RegistryList{
		DockerLibraryRegistry: "docker.io/library",
		E2eRegistry:           "gcr.io/kubernetes-e2e-test-images",
		GcRegistry:            "k8s.gcr.io",
	}
	return registry
}

var (
	registry              = initReg()
	dockerLibraryRegistry = registry.DockerLibraryRegistry
	e2eRegistry           = registry.E2eRegistry
	gcRegistry            = registry.GcRegistry
)

func initImageConfigs() map[int]Config {
	configs := map[int]Config{}
	configs[BusyBox] = Config{dockerLibraryRegistry, "busybox", "1.29"}
	configs[Nonewprivs] = Config{e2eRegistry, "nonewprivs", "1.0"}
	// Pause - a comment
	configs[Pause] = Config{gcRegistry, "pause", "3.2"}
	return configs
}

func GetE2EImage(image int) string {
	return fmt.Sprintf("%s/%s:%s", imageConfigs[image].registry, imageConfigs[image].name, imageConfigs[image].version)
}

func GetPauseImageName() string {
	return GetE2EImage(Pause)
}
"#;

const IMPORT: &str = "import (\n\timageutils \"k8s.io/kubernetes/test/utils/image\"\n)\n";

fn image_list_go(entries: &str) -> String {
    format!(
        "package e2enode\n{IMPORT}\nvar NodePrePullImageList = sets.NewString(\n{entries})\n\n\
         func getGPUDevicePluginImage() string {{\n\tds, err := e2emanifest.DaemonSetFromURL(e2egpu.GPUDevicePluginDSYAML)\n\
         \treturn ds.Spec.Template.Spec.Containers[0].Image\n}}\n"
    )
}

fn sources(entries: &str) -> Sources {
    let mut s = Sources::default();
    s.insert(MANIFEST_GO, MANIFEST);
    s.insert(IMAGE_LIST_GO, &image_list_go(entries));
    s.insert(
        "test/e2e_node/util.go",
        &format!("package e2enode\n{IMPORT}\nvar busyboxImage = imageutils.GetE2EImage(imageutils.BusyBox)\n"),
    );
    s.insert(
        "test/e2e_node/mirror_pod_grace_period_test.go",
        "const t = `\nspec:\n  containers:\n  - name: m\n    image: busybox:1.31.1\n  - image: %s\n  - image: k8s.gcr.io/pause:3.2\n`\n\
         var c = Container{\n\timage:       \"gcr.io/authenticated-image-pulling/alpine:3.7\",\n}\n",
    );
    s.insert(
        "test/e2e/common/util.go",
        &format!(
            "package common\n{IMPORT}\nvar PrePulledImages = sets.NewString(\n\
             \timageutils.GetE2EImage(imageutils.BusyBox),\n\
             \timageutils.GetE2EImage(imageutils.Nonewprivs),\n)\n"
        ),
    );
    s
}

const GOOD: &str = "\t\"google/cadvisor:latest\",\n\
                    \tbusyboxImage,\n\
                    \t// a comment\n\
                    \timageutils.GetPauseImageName(),\n\
                    \tgetGPUDevicePluginImage(),\n\
                    \t\"k8s.gcr.io/busybox@sha256:4bdd\",\n";

#[test]
fn the_list_is_evaluated_from_the_sources_forms() {
    let list = derive(&sources(GOOD)).unwrap();
    assert_eq!(
        list.declared,
        [
            "docker.io/library/busybox:1.29",
            "gcr.io/kubernetes-e2e-test-images/nonewprivs:1.0",
            "google/cadvisor:latest",
            "k8s.gcr.io/busybox@sha256:4bdd",
            "k8s.gcr.io/pause:3.2",
        ]
    );
    // `image: %s` and the Go field are not static pod images; `- image: REF` is.
    assert_eq!(
        list.static_pods,
        ["docker.io/library/busybox:1.31.1", "k8s.gcr.io/pause:3.2"]
    );
    let [left] = list.left_out.as_slice() else {
        panic!("{:?}", list.left_out)
    };
    assert_eq!(left.at, "test/e2e_node/image_list.go:11");
    assert_eq!(left.entry, "getGPUDevicePluginImage()");
    assert!(left.why.contains("DaemonSetFromURL"), "{}", left.why);
    assert_eq!(
        list.all(),
        [
            "docker.io/google/cadvisor:latest",
            "docker.io/library/busybox:1.29",
            "docker.io/library/busybox:1.31.1",
            "gcr.io/kubernetes-e2e-test-images/nonewprivs:1.0",
            "k8s.gcr.io/busybox@sha256:4bdd",
            "k8s.gcr.io/pause:3.2",
        ]
    );
}

#[test]
fn an_unknown_form_fails_naming_the_file_and_line() {
    for (entries, line, why) in [
        ("\tos.Getenv(\"X\"),\n", 7, "expected a string literal"),
        (
            "\timageutils.GetE2EImage(imageutils.Nope),\n",
            7,
            "no configs[Nope]",
        ),
        (
            "\t\"a:1\",\n\tnoSuchVar,\n",
            8,
            "no one-line `var noSuchVar",
        ),
        ("\t\"a:1\", \"b:2\"\n", 7, "ending with ','"),
        ("\tnoSuchFunc(),\n", 7, "no `func noSuchFunc() string {`"),
    ] {
        let e = derive(&sources(entries)).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "test/e2e_node/image_list.go:{line}: cannot evaluate"
            )) && e.contains(why),
            "{entries:?}: {e}"
        );
    }
    // The good sources with one file replaced or added: the error starts with `want`.
    for (path, text, want) in [
        (
            MANIFEST_GO,
            MANIFEST.replace("\"%s/%s:%s\"", "\"%s/%s@%s\""),
            "test/utils/image/manifest.go: GetE2EImage",
        ),
        (
            MANIFEST_GO,
            MANIFEST.replace(
                "Config{gcRegistry, \"pause\", \"3.2\"}",
                "Config{otherRegistry, \"pause\", \"3.2\"}",
            ),
            "test/utils/image/manifest.go:24: cannot evaluate",
        ),
        (
            "test/e2e_node/other_test.go",
            "const t = `\nspec:\n  containers:\n  - image: {{.Image}}\n`\n".to_owned(),
            "test/e2e_node/other_test.go:4: cannot evaluate \"- image: {{.Image}}\"",
        ),
    ] {
        let mut s = sources(GOOD);
        s.insert(path, &text);
        let e = derive(&s).unwrap_err().to_string();
        assert!(e.starts_with(want), "{e}");
    }
    let mut s = Sources::default();
    s.insert(MANIFEST_GO, MANIFEST);
    let e = derive(&s).unwrap_err().to_string();
    assert!(
        e.contains("test/e2e_node/*.go: `var NodePrePullImageList"),
        "{e}"
    );
}

#[test]
fn references_are_normalized_as_containerd_does() {
    for (given, want) in [
        ("busybox:1.31.1", "docker.io/library/busybox:1.31.1"),
        ("busybox", "docker.io/library/busybox:latest"),
        ("google/cadvisor:latest", "docker.io/google/cadvisor:latest"),
        ("k8s.gcr.io/pause:3.2", "k8s.gcr.io/pause:3.2"),
        ("localhost/x:1", "localhost/x:1"),
        ("host:5000/x", "host:5000/x:latest"),
        (
            "k8s.gcr.io/busybox@sha256:4b",
            "k8s.gcr.io/busybox@sha256:4b",
        ),
    ] {
        assert_eq!(normalize_reference(given), want);
    }
}

#[test]
fn only_the_needed_members_are_read_from_the_source_archive() {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, body) in [
        ("./test/utils/image/manifest.go", MANIFEST),
        ("test/e2e_node/image_list.go", "x"),
        ("test/e2e_node/remote/remote.go", "not wanted"),
        ("README.md", "not wanted"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    let bytes = gz.finish().unwrap();
    let s = read_source_tar_gz(bytes.as_slice(), "src.tar.gz").unwrap();
    assert_eq!(
        s.files.keys().collect::<Vec<_>>(),
        [IMAGE_LIST_GO, MANIFEST_GO]
    );
    let e = read_source_tar_gz(&bytes[..20], "src.tar.gz")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("src.tar.gz: "), "{e}");
}
