//! A data directory written under another state-machine contract is
//! refused at start, naming the contract it holds: nothing runs old
//! history under rules it was not written by.

use crate::harness::{Server, open_store};

const OLD_RELEASE: &[u8] =
    include_bytes!("../../guest-statemachine/releases/statemachine-1.0.0.wasm");

#[test]
fn a_data_directory_of_contract_1_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    {
        let store = open_store(&data);
        store.set_genesis_version(OLD_RELEASE).expect("records");
        store.flush().expect("flushes");
    }
    let failure = match Server::try_start(&data) {
        Ok(_) => panic!("started under another contract"),
        Err(failure) => failure,
    };
    assert_ne!(failure.code, Some(0));
    assert!(
        failure.stderr.contains("wallet:statemachine@1.0.0"),
        "{}",
        failure.stderr
    );
    assert!(
        failure.stderr.contains("wallet:statemachine@2.0.0"),
        "{}",
        failure.stderr
    );
}
