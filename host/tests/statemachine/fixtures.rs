//! Components that break the rules, built from WebAssembly text and the real
//! WIT at test time, so no binary fixture is committed.

use wit_component::{ComponentEncoder, StringEncoding, embed_component_metadata};
use wit_parser::Resolve;

const EXECUTE: &str = "wallet:statemachine/machine@1.0.0#execute";

const FIXTURE_WIT: &str = r#"
package test:fixtures;

world clocked {
    import wasi:clocks/wall-clock@0.2.0;
    export wallet:statemachine/machine@1.0.0;
}
"#;

const WASI_CLOCKS_WIT: &str = r#"
package wasi:clocks@0.2.0;

interface wall-clock {
    now: func() -> u64;
}
"#;

/// A core module exporting `execute` with `body` as its code. The canonical
/// ABI flattens (batch-header, list<command>) to five parameters and returns
/// the batch output through a pointer.
fn core_module(imports: &str, body: &str) -> Vec<u8> {
    let text = format!(
        r#"(module
            {imports}
            (memory (export "memory") 1)
            (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 8)
            (func (export "{EXECUTE}") (param i64 i64 i32 i32 i32) (result i32) {body})
            (func (export "cabi_post_{EXECUTE}") (param i32))
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

/// A state machine whose `execute` never returns.
pub fn looping() -> Vec<u8> {
    component(
        core_module("", "(loop $forever (br $forever)) unreachable"),
        "statemachine",
    )
}

/// A state machine that imports the WASI wall clock.
pub fn clocked() -> Vec<u8> {
    let import = r#"(import "wasi:clocks/wall-clock@0.2.0" "now" (func (result i64)))"#;
    component(core_module(import, "unreachable"), "clocked")
}
