//! The broker's modules depend on each other one way (docs/architecture.md, "Module
//! graph"): this reads every `crate::<module>` path in `broker/src` and fails on a cycle
//! between top-level modules, naming it. Tests inside a module count too: a test-only
//! edge still ties the modules together.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Top-level modules of the library: `src/x.rs` and `src/x/`.
fn modules() -> BTreeSet<String> {
    std::fs::read_dir(SRC)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let module = name.strip_suffix(".rs").unwrap_or(&name).to_string();
            let library = !["lib", "main", "bin"].contains(&module.as_str());
            library.then_some(module)
        })
        .collect()
}

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap().filter_map(|e| e.ok()) {
            rust_files(&e.path(), out);
        }
    } else if path.is_file() && path.extension().is_some_and(|x| x == "rs") {
        out.push(path.to_path_buf());
    }
}

/// module -> the other modules its files name as `crate::<module>`.
fn edges(modules: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for m in modules {
        let mut files = Vec::new();
        rust_files(&Path::new(SRC).join(m), &mut files);
        rust_files(&Path::new(SRC).join(format!("{m}.rs")), &mut files);
        let mut deps = BTreeSet::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if modules.contains(&name) && &name != m {
                    deps.insert(name);
                }
            }
        }
        graph.insert(m.clone(), deps);
    }
    graph
}

/// A cycle through `node`, if the depth-first search from it finds one.
fn cycle_from(
    node: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut cycle = path[at..].to_vec();
        cycle.push(node.to_string());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in &graph[node] {
        if let Some(c) = cycle_from(next, graph, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn given_the_broker_sources_when_following_crate_paths_should_find_no_cycle_between_modules() {
    let modules = modules();
    assert!(
        modules.contains("shard") && modules.contains("handlers"),
        "{modules:?}"
    );
    let graph = edges(&modules);
    let mut done = BTreeSet::new();
    for m in &modules {
        if let Some(cycle) = cycle_from(m, &graph, &mut Vec::new(), &mut done) {
            panic!(
                "modules depend on each other in a cycle: {}\ngraph: {graph:#?}",
                cycle.join(" -> ")
            );
        }
    }
    // The runtime knows no API: shard/ uses neither handlers, network, log nor groups.
    for api_side in ["handlers", "network", "log", "groups", "partitions"] {
        assert!(!graph["shard"].contains(api_side), "shard -> {api_side}");
    }
}
