//! Three members running four partitions each: transfers between random
//! accounts (most of them across partitions) through every member, while
//! the leaders of random partitions (and with them the coordinators of the
//! transfers those partitions started) are killed with -9, in both modes;
//! and while partitions' replicas move to a fourth member.

use super::*;

const PARTITIONS: usize = 4;

impl Cluster {
    /// Waits until every partition has a leader the live members hosting
    /// it agree on; returns each partition's leading member.
    async fn partition_leaders(&self) -> Vec<usize> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut leaders = Vec::new();
            let (_, first) = self
                .api(self.live()[0])
                .get(Some(ADMIN), "/v1/cluster/status")
                .await;
            let count = partition_count(&first);
            for partition in 0..count {
                let mut seen = Vec::new();
                for i in self.live() {
                    let (_, body) = self.api(i).get(Some(ADMIN), "/v1/cluster/status").await;
                    let mine = &body["partitions"][partition];
                    if mine["hosted"] == true {
                        seen.push(mine["leader"].as_u64());
                    }
                }
                match seen.first().copied().flatten() {
                    Some(leader)
                        if seen.iter().all(|l| *l == Some(leader))
                            && self.nodes[(leader - 1) as usize].is_some() =>
                    {
                        leaders.push((leader - 1) as usize);
                    }
                    _ => break,
                }
            }
            if count > 0 && leaders.len() == count {
                return leaders;
            }
            assert!(
                Instant::now() < deadline,
                "not every partition has a leader"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every live member hosting a partition applied and
    /// projected the same index in it and no transfer is left in flight;
    /// returns each member's status.
    async fn quiesce_partitions(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut statuses = Vec::new();
            for i in self.live() {
                let (_, body) = self.api(i).get(Some(ADMIN), "/v1/cluster/status").await;
                statuses.push(body);
            }
            let count = partition_count(&statuses[0]);
            let settled = count > 0
                && statuses.iter().all(|s| partition_count(s) == count)
                && (0..count).all(|p| {
                    let hosts = hosts(&statuses, p);
                    let first = hosts[0];
                    hosts.iter().all(|mine| {
                        mine["applied_index"] == first["applied_index"]
                            && mine["projected_index"] == mine["applied_index"]
                            && mine["transfers_in_flight"] == 0
                    })
                });
            if settled {
                return statuses;
            }
            if Instant::now() > deadline {
                for i in 0..self.nodes.len() {
                    let log = self.data(i).with_extension("stderr.log");
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let ours: Vec<&str> = text
                        .lines()
                        .filter(|line| line.contains("wallet_host"))
                        .collect();
                    let tail = &ours[ours.len().saturating_sub(20)..];
                    eprintln!("member {}'s last log lines: {tail:#?}", i + 1);
                }
                panic!("the members did not settle: {statuses:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits (up to a minute) until `members` members host each of the
    /// `count` partitions, settled as `quiesce_partitions` says: a member
    /// given a partition, or opening one a split added, catches up by a
    /// snapshot its group sends once it has opened it.
    async fn hosted_by(&self, members: usize, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let statuses = self.quiesce_partitions().await;
            if (0..count).all(|p| hosts(&statuses, p).len() == members) {
                return statuses;
            }
            assert!(Instant::now() < deadline, "not hosted: {statuses:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// How many partitions a member's status shows.
fn partition_count(status: &Value) -> usize {
    status["partitions"].as_array().map_or(0, Vec::len)
}

/// Partition `p`'s status at each member that hosts it.
fn hosts(statuses: &[Value], p: usize) -> Vec<&Value> {
    statuses
        .iter()
        .map(|s| &s["partitions"][p])
        .filter(|mine| mine["hosted"] == true)
        .collect()
}

/// The USD the partitions hold in flight, summed as one of each
/// partition's hosts sees it: zero once every transfer ended.
fn in_flight(statuses: &[Value]) -> i64 {
    (0..partition_count(&statuses[0]))
        .map(|p| {
            hosts(statuses, p)[0]["in_flight"]["USD"]
                .as_i64()
                .unwrap_or(0)
        })
        .sum()
}

async fn partitions_survive_kills(mode: &str) {
    let mut cluster = Cluster::start(&["--partitions", "4", "--coordination", mode]);
    cluster.partition_leaders().await;
    open_and_fund(&cluster.api(0)).await;
    for i in 0..3 {
        cluster.authenticates(i).await;
    }
    let apis = Arc::new((0..3).map(|i| cluster.api(i)).collect::<Vec<_>>());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|seed| tokio::spawn(transfer_until(apis.clone(), seed * 7919 + 1, stop.clone())))
        .collect();
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let leader = cluster.partition_leaders().await[round % PARTITIONS];
        cluster.kill9(leader);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        cluster.start_node(leader);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("a client"));
    }
    let map = wallet_host::node::PartitionMap::new(PARTITIONS as u32);
    let across = outcomes
        .iter()
        .filter(|o| o.moved && map.of(&o.from) != map.of(&o.to))
        .count();
    assert!(
        across > 30,
        "{mode}: too few transfers across partitions: {across}"
    );

    let statuses = cluster.quiesce_partitions().await;
    assert_replicas_agree(&statuses, 3, mode);
    // What left one partition arrived in another.
    assert_eq!(in_flight(&statuses), 0, "{mode}: {statuses:?}");
    assert_settled(&cluster, &outcomes, mode).await;
    // A failed transfer moved nothing: it is reported failed.
    for outcome in outcomes.iter().filter(|o| !o.moved).step_by(5) {
        let (_, body) = cluster
            .api(0)
            .get(Some(ADMIN), &format!("/v1/wallet/transfers/{}", outcome.id))
            .await;
        assert_eq!(body["status"], "failed", "{mode}: {body}");
    }
    audit_members(&mut cluster, &statuses, mode);
}

/// Each partition has `replicas` hosts, whose chain heads are one.
fn assert_replicas_agree(statuses: &[Value], replicas: usize, label: &str) {
    for p in 0..partition_count(&statuses[0]) {
        let heads: Vec<&Value> = hosts(statuses, p)
            .iter()
            .map(|s| &s["chain_head"])
            .collect();
        assert_eq!(heads.len(), replicas, "{label}: partition {p}'s replicas");
        assert!(
            heads.iter().all(|h| *h == heads[0]),
            "{label}: partition {p}'s chain heads differ: {heads:?}"
        );
    }
}

/// Every live member reads each account moved by exactly the transfers
/// answered 200, no reservation left, and the rest of the deposits in the
/// bank's shards; and transfers answered 200 as succeeded.
async fn assert_settled(cluster: &Cluster, outcomes: &[Outcome], label: &str) {
    let expected = expected_balances(outcomes);
    for i in cluster.live() {
        let api = cluster.api(i);
        assert_eq!(balances(&api).await, expected, "{label}: member {}", i + 1);
        for account in accounts() {
            let (_, body) = api
                .get(Some(ADMIN), &format!("/v1/wallet/accounts/{account}"))
                .await;
            assert_eq!(
                body["balances"]["USD"]["reserved"], "0.00",
                "{label}: a reservation is left: {body}"
            );
        }
        // Deposits came from the bank's shards: they hold the rest.
        let (_, bank) = api
            .get(Some(ADMIN), "/v1/wallet/accounts/external:bank")
            .await;
        assert_eq!(
            bank["balances"]["USD"]["available"],
            format!("-{}.00", FUNDS_CENTS * accounts().len() as i64 / 100),
            "{label}"
        );
        assert_moved(&api, outcomes, 7).await;
    }
}

/// Stops every member; each member's every partition audits from genesis
/// (a split-off one from its parent's split) to the head its group agreed
/// on.
fn audit_members(cluster: &mut Cluster, statuses: &[Value], label: &str) {
    for node in &mut cluster.nodes {
        node.take().expect("running").stop();
    }
    for (i, status) in statuses.iter().enumerate() {
        let (passed, report, stderr) = crate::audit::audit(&cluster.data(i), &[]);
        assert!(passed, "{label}: member {}: {report} {stderr}", i + 1);
        for p in 0..partition_count(status) {
            assert_eq!(
                report["partitions"][p]["chain_head"],
                status["partitions"][p]["chain_head"],
                "{label}: member {}, partition {p}",
                i + 1
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tcc_transfers_across_partitions_survive_killed_leaders_and_coordinators() {
    partitions_survive_kills("tcc").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn saga_transfers_across_partitions_survive_killed_leaders_and_coordinators() {
    partitions_survive_kills("saga").await;
}

/// `wallet cluster move`, asked of member `via`.
fn move_by_command(cluster: &Cluster, via: usize, partition: usize, from: usize, to: usize) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wallet"))
        .args(["cluster", "move", "--target"])
        .arg(format!("http://127.0.0.1:{}", cluster.ports[via]))
        .args(["--token", ADMIN, "--partition"])
        .arg(partition.to_string())
        .arg("--from")
        .arg((from + 1).to_string())
        .arg("--to")
        .arg((to + 1).to_string())
        .output()
        .expect("wallet cluster move runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_move_to_a_new_member_while_transfers_go_on() {
    let mut cluster = Cluster::start(&["--partitions", "4", "--snapshot-entries", "100"]);
    cluster.partition_leaders().await;
    open_and_fund(&cluster.api(0)).await;
    // A fourth member joins with a replica of partition 0 alone; started
    // without --partitions, it runs as many as the members it asks (the
    // cluster refuses to add one that runs another count).
    let port = free_ports(1)[0];
    cluster.ports.push(port);
    cluster.args = vec!["--snapshot-entries".into(), "100".into(), "--join".into()];
    cluster.nodes.push(None);
    cluster.start_node(3);
    let body = json!({"node_id": 4, "address": format!("127.0.0.1:{port}"), "partitions": [0]});
    let (status, answer) = cluster
        .api(0)
        .post(Some(ADMIN), "/v1/cluster/members", body)
        .await;
    assert_eq!(
        (status, &answer["members"]),
        (StatusCode::OK, &json!([1, 2, 3, 4])),
        "{answer}"
    );
    // The new member takes requests once it applied the tokens.
    cluster.authenticates(3).await;
    // Transfers go through every member, the new one too: it hosts
    // partition 0 alone, and sends the rest where they are hosted.
    let apis = Arc::new((0..4).map(|i| cluster.api(i)).collect::<Vec<_>>());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|seed| tokio::spawn(transfer_until(apis.clone(), seed * 6007 + 3, stop.clone())))
        .collect();
    // Until the partitions to move have snapshots: a new replica catches
    // up from one when its leader's log no longer starts at 1 (openraft
    // purges a log when no replication is reading it, so not always).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, status) = cluster.api(0).get(Some(ADMIN), "/v1/cluster/status").await;
        let applied = |p: usize| status["partitions"][p]["applied_index"].as_u64();
        if applied(1) > Some(300) && applied(2) > Some(300) {
            break;
        }
        assert!(Instant::now() < deadline, "too slow: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let leaders = cluster.partition_leaders().await;
    // Partition 1's leader gives its replica to the new member, by the
    // command, asked of the new member.
    let from1 = leaders[1];
    tokio::task::block_in_place(|| move_by_command(&cluster, 3, 1, from1, 3));
    // Partition 2: a follower's replica, by the API, asked of that
    // follower.
    let from2 = (leaders[2] + 1) % 3;
    let api = cluster.api(from2);
    let body = json!({"node_id": 4});
    let (status, answer) = api
        .post(Some(ADMIN), "/v1/cluster/partitions/2/replicas", body)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["members"].as_array().map(Vec::len), Some(4));
    let path = format!("/v1/cluster/partitions/2/replicas/{}", from2 + 1);
    let (status, answer) = api.delete(Some(ADMIN), &path).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["members"].as_array().map(Vec::len), Some(3));
    // Every member keeps partition 0; a replica goes only to a member.
    let (status, answer) = api
        .delete(Some(ADMIN), "/v1/cluster/partitions/0/replicas/1")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let body = json!({"node_id": 9});
    let (status, answer) = api
        .post(Some(ADMIN), "/v1/cluster/partitions/3/replicas", body)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("a client"));
    }

    let statuses = cluster.quiesce_partitions().await;
    let voters = |gone: usize| -> Vec<u64> {
        (0..4)
            .filter(|i| *i != gone)
            .map(|i| i as u64 + 1)
            .collect()
    };
    for (i, status) in statuses.iter().enumerate() {
        let mine = &status["partitions"];
        assert_eq!(mine[1]["hosted"], i != from1, "member {}: {status}", i + 1);
        assert_eq!(mine[2]["hosted"], i != from2, "member {}: {status}", i + 1);
        assert_eq!(mine[3]["hosted"], i != 3, "member {}: {status}", i + 1);
    }
    for (p, gone) in [(1, from1), (2, from2)] {
        let hosts = hosts(&statuses, p);
        assert_eq!(hosts.len(), 3);
        for mine in &hosts {
            assert_eq!(mine["members"], json!(voters(gone)), "partition {p}");
        }
    }
    for p in 0..PARTITIONS {
        let heads: Vec<&Value> = hosts(&statuses, p)
            .iter()
            .map(|s| &s["chain_head"])
            .collect();
        assert!(
            heads.iter().all(|h| *h == heads[0]),
            "partition {p}'s chain heads differ: {heads:?}"
        );
    }
    assert_eq!(in_flight(&statuses), 0, "{statuses:?}");
    let expected = expected_balances(&outcomes);
    // Every member reads every account, at the members hosting it.
    for i in cluster.live() {
        let api = cluster.api(i);
        assert_eq!(balances(&api).await, expected, "member {}", i + 1);
        assert_moved(&api, &outcomes, 7).await;
        let (status, body) = linearizable(&api, "/v1/wallet/accounts/acct-3").await;
        assert_eq!(status, StatusCode::OK, "member {}: {body}", i + 1);
    }
    // The new member's replicas audit to the heads their groups agreed on.
    for node in &mut cluster.nodes {
        node.take().expect("running").stop();
    }
    let (passed, report, stderr) = crate::audit::audit(&cluster.data(3), &[]);
    assert!(passed, "{report} {stderr}");
    for p in 0..3 {
        assert_eq!(
            report["partitions"][p]["chain_head"], statuses[3]["partitions"][p]["chain_head"],
            "partition {p}"
        );
    }
}

/// `wallet cluster split`, asked of member `via`: its answer.
fn split_by_command(cluster: &Cluster, via: usize, partition: usize) -> Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_wallet"))
        .args(["cluster", "split", "--target"])
        .arg(format!("http://127.0.0.1:{}", cluster.ports[via]))
        .args(["--token", ADMIN, "--partition"])
        .arg(partition.to_string())
        .output()
        .expect("wallet cluster split runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the split as JSON")
}

/// Three members grow from two partitions to three while transfers go on
/// through every member (most across partitions): partition 1 splits, by
/// the command asked of a member that may not lead anything; then the
/// leaders of partition 0 (which holds the map) and of the new partition
/// are killed with -9 and restarted, and open the new partition from their
/// data directories. Every transfer moves money once, the replicas of each
/// partition agree, the members route calls for the moved accounts to the
/// new partition, and every member's partitions audit.
#[tokio::test(flavor = "multi_thread")]
async fn a_partition_splits_while_transfers_go_on_and_leaders_are_killed() {
    let mut cluster = Cluster::start(&["--partitions", "2"]);
    cluster.partition_leaders().await;
    for i in 0..3 {
        cluster.authenticates(i).await;
    }
    open_and_fund(&cluster.api(0)).await;
    let apis = Arc::new((0..3).map(|i| cluster.api(i)).collect::<Vec<_>>());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|seed| tokio::spawn(transfer_until(apis.clone(), seed * 4099 + 5, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let split = tokio::task::block_in_place(|| split_by_command(&cluster, 2, 1));
    assert_eq!(
        (&split["partition"], &split["child"], &split["partitions"]),
        (&json!(1), &json!(2), &json!(3)),
        "{split}"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let leaders = cluster.partition_leaders().await;
    assert_eq!(leaders.len(), 3, "every member runs the new partition");
    let mut victims = vec![leaders[0], leaders[2]];
    victims.dedup();
    for victim in victims {
        cluster.kill9(victim);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        cluster.start_node(victim);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("a client"));
    }
    let map = wallet_host::node::PartitionMap::new(2);
    let (map, _) = map.split(1).expect("partition 1 splits");
    let arrived = outcomes
        .iter()
        .filter(|o| o.moved && (map.of(&o.from) == 2 || map.of(&o.to) == 2))
        .count();
    assert!(
        arrived > 10,
        "too few transfers touched the new partition: {arrived}"
    );

    let statuses = cluster.quiesce_partitions().await;
    for (i, status) in statuses.iter().enumerate() {
        assert_eq!(partition_count(status), 3, "member {}: {status}", i + 1);
    }
    assert_replicas_agree(&statuses, 3, "split");
    // What left partition 1 arrived in partition 2.
    assert_eq!(in_flight(&statuses), 0, "{statuses:?}");
    assert_settled(&cluster, &outcomes, "split").await;
    audit_members(&mut cluster, &statuses, "split");
}

/// A member stopped while partition 1 splits comes back after both
/// partitions' logs were compacted past where it stopped: its replica of
/// partition 1 installs a snapshot taken after the split, so it never
/// applies the split itself; it opens the new partition empty and the new
/// partition's group sends it a snapshot. Its replicas then agree with the
/// others', and it reads every balance as they do. Then a fourth member
/// joins, started (as a new member is) with no more than the two
/// partitions the cluster began with: it opens the new one by itself, is
/// given a replica of each, and agrees with the others.
#[tokio::test(flavor = "multi_thread")]
async fn a_member_down_during_a_split_catches_up_past_it_by_snapshot() {
    let mut cluster = Cluster::start(&["--partitions", "2", "--snapshot-entries", "100"]);
    let leaders = cluster.partition_leaders().await;
    for i in 0..3 {
        cluster.authenticates(i).await;
    }
    open_and_fund(&cluster.api(0)).await;
    let behind = (0..3)
        .find(|i| !leaders.contains(i))
        .unwrap_or((leaders[1] + 1) % 3);
    cluster.kill9(behind);
    let live: Vec<usize> = (0..3).filter(|i| *i != behind).collect();
    let apis = Arc::new(live.iter().map(|i| cluster.api(*i)).collect::<Vec<_>>());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|seed| tokio::spawn(transfer_until(apis.clone(), seed * 3001 + 11, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let api = cluster.api(live[0]);
    let (status, split) = api
        .post(Some(ADMIN), "/v1/cluster/partitions/1/split", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{split}");
    let index = split["index"].as_u64().expect("the split's index");
    // Until both partitions applied hundreds of entries past the split:
    // each is snapshotted and its log purged past where the stopped member
    // is.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, status) = api.get(Some(ADMIN), "/v1/cluster/status").await;
        let applied = |p: usize| status["partitions"][p]["applied_index"].as_u64();
        if applied(1) > Some(index + 400) && applied(2) > Some(400) {
            break;
        }
        assert!(Instant::now() < deadline, "too slow: {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("a client"));
    }
    cluster.start_node(behind);
    cluster.authenticates(behind).await;
    let statuses = cluster.hosted_by(3, 3).await;
    assert_eq!(partition_count(&statuses[0]), 3, "{statuses:?}");
    assert_replicas_agree(&statuses, 3, "caught up");
    assert!(
        snapshots_installed(&cluster.api(behind)).await >= 2,
        "the member caught up on partitions 1 and 2 without snapshots"
    );
    assert_settled(&cluster, &outcomes, "caught up").await;

    let port = free_ports(1)[0];
    cluster.ports.push(port);
    cluster.args = vec!["--snapshot-entries".into(), "100".into(), "--join".into()];
    cluster.nodes.push(None);
    cluster.start_node(3);
    let body = json!({"node_id": 4, "address": format!("127.0.0.1:{port}")});
    let (status, answer) = api.post(Some(ADMIN), "/v1/cluster/members", body).await;
    assert_eq!(
        (status, &answer["members"]),
        (StatusCode::OK, &json!([1, 2, 3, 4])),
        "{answer}"
    );
    cluster.authenticates(3).await;
    let statuses = cluster.hosted_by(4, 3).await;
    for (p, range) in [(1, [1u64 << 31, 3 << 30]), (2, [3 << 30, 1 << 32])] {
        let mine = &statuses[3]["partitions"][p];
        assert_eq!(mine["hosted"], true, "{}", statuses[3]);
        assert_eq!(mine["range"]["start"], range[0], "{}", statuses[3]);
        assert_eq!(mine["range"]["end"], range[1], "{}", statuses[3]);
    }
    assert_replicas_agree(&statuses, 4, "joined");
    assert_settled(&cluster, &outcomes, "joined").await;
}
