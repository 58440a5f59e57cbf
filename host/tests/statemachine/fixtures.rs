//! Components that break the rules, built from WebAssembly text and the real
//! WIT at test time, so no binary fixture is committed.

use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

const MACHINE: &str = "wallet:statemachine/machine@2.0.0";

const FIXTURE_WIT: &str = r#"
package test:fixtures;

world clocked {
    import wasi:clocks/wall-clock@0.2.0;
    export wallet:statemachine/machine@2.0.0;
}
"#;

const WASI_CLOCKS_WIT: &str = r#"
package wasi:clocks@0.2.0;

interface wall-clock {
    now: func() -> u64;
}
"#;

/// Where the fixed answers live in the fixtures' memory.
const PREFETCH_AT: u32 = 1024;
const EXECUTE_AT: u32 = 2048;
/// Where every argument is lowered: the fixtures never read them.
const SCRATCH_AT: u32 = 8192;

/// WAT text for a data segment holding `bytes`.
fn data(at: u32, bytes: &[u8]) -> String {
    let escaped: String = bytes.iter().map(|b| format!("\\{b:02x}")).collect();
    format!(r#"(data (i32.const {at}) "{escaped}")"#)
}

/// A core module whose `prefetch` and `execute` run `prefetch_body` and
/// `execute_body`. The canonical ABI flattens (batch-header, list<u8>,
/// list<u8>) to seven parameters and returns a list through a pointer to
/// its (pointer, length) pair.
fn core_module(imports: &str, extra: &str, prefetch_body: &str, execute_body: &str) -> Vec<u8> {
    let text = format!(
        r#"(module
            {imports}
            (memory (export "memory") 4)
            {extra}
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const {SCRATCH_AT})
            (func (export "{MACHINE}#prefetch") (param i64 i64 i32 i32 i32 i32 i32) (result i32) {prefetch_body})
            (func (export "{MACHINE}#execute") (param i64 i64 i32 i32 i32 i32 i32) (result i32) {execute_body})
            (func (export "cabi_post_{MACHINE}#prefetch") (param i32))
            (func (export "cabi_post_{MACHINE}#execute") (param i32))
        )"#
    );
    wat::parse_str(text).expect("fixture text parses")
}

fn component(mut module: Vec<u8>, world: &str) -> Vec<u8> {
    let mut resolve = Resolve::default();
    let wit_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../wit");
    let wallet = resolve.push_dir(wit_dir).expect("wit/ parses").0;
    resolve
        .push_str("wasi-clocks.wit", WASI_CLOCKS_WIT)
        .expect("fixture WIT parses");
    let fixtures = resolve
        .push_str("fixtures.wit", FIXTURE_WIT)
        .expect("fixture WIT parses");
    let package = if world == "statemachine" {
        wallet
    } else {
        fixtures
    };
    let world = resolve
        .select_world(&[package], Some(world))
        .expect("world exists");
    embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8, false)
        .expect("metadata embeds");
    ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .expect("component encodes")
}

/// A guest that answers every batch with the same bytes: prefetch says it
/// needs no keys, execute answers `answer`.
pub fn answering(answer: &[u8]) -> Vec<u8> {
    let prefetch = [1u8, 0, 0, 0, 0];
    let pair = |at: u32, len: usize| {
        let mut bytes = at.to_le_bytes().to_vec();
        bytes.extend_from_slice(&(len as u32).to_le_bytes());
        bytes
    };
    let extra = [
        data(PREFETCH_AT, &prefetch),
        data(EXECUTE_AT, answer),
        data(16, &pair(PREFETCH_AT, prefetch.len())),
        data(32, &pair(EXECUTE_AT, answer.len())),
    ]
    .join("\n");
    let module = core_module("", &extra, "i32.const 16", "i32.const 32");
    component(module, "statemachine")
}

/// A state machine whose `prefetch` never returns.
pub fn looping() -> Vec<u8> {
    let forever = "(loop $forever (br $forever)) unreachable";
    component(core_module("", "", forever, "unreachable"), "statemachine")
}

/// A state machine that imports the WASI wall clock.
pub fn clocked() -> Vec<u8> {
    let import = r#"(import "wasi:clocks/wall-clock@0.2.0" "now" (func (result i64)))"#;
    component(
        core_module(import, "", "unreachable", "unreachable"),
        "clocked",
    )
}
