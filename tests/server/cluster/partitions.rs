//! Three members running four partitions each: transfers between random
//! accounts (most of them across partitions) through every member, while
//! the leaders of random partitions (and with them the coordinators of the
//! transfers those partitions started) are killed with -9, in both modes.

use super::*;

const PARTITIONS: usize = 4;

impl Cluster {
    /// Waits until every partition has a leader the live members agree
    /// on; returns each partition's leading member.
    async fn partition_leaders(&self) -> Vec<usize> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut leaders = Vec::new();
            for partition in 0..PARTITIONS {
                let mut seen = Vec::new();
                for i in self.live() {
                    let (_, body) = self.api(i).get(Some(ADMIN), "/v1/cluster/status").await;
                    seen.push(body["partitions"][partition]["leader"].as_u64());
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
            if leaders.len() == PARTITIONS {
                return leaders;
            }
            assert!(
                Instant::now() < deadline,
                "not every partition has a leader"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every live member applied and projected the same index
    /// in every partition and no transfer is left in flight; returns each
    /// member's status.
    async fn quiesce_partitions(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut statuses = Vec::new();
            for i in self.live() {
                let (_, body) = self.api(i).get(Some(ADMIN), "/v1/cluster/status").await;
                statuses.push(body);
            }
            let settled = (0..PARTITIONS).all(|p| {
                let first = &statuses[0]["partitions"][p];
                statuses.iter().all(|s| {
                    let mine = &s["partitions"][p];
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
}

async fn partitions_survive_kills(mode: &str) {
    let mut cluster = Cluster::start(&["--partitions", "4", "--coordination", mode]);
    cluster.partition_leaders().await;
    open_and_fund(&cluster.api(0)).await;
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
    for p in 0..PARTITIONS {
        let heads: Vec<&Value> = statuses
            .iter()
            .map(|s| &s["partitions"][p]["chain_head"])
            .collect();
        assert!(
            heads.iter().all(|h| *h == heads[0]),
            "{mode}: partition {p}'s chain heads differ: {heads:?}"
        );
    }
    // What left one partition arrived in another.
    let in_flight: i64 = (0..PARTITIONS)
        .map(|p| {
            statuses[0]["partitions"][p]["in_flight"]["USD"]
                .as_i64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(in_flight, 0, "{mode}: {statuses:?}");
    let mut expected: BTreeMap<String, i64> =
        accounts().into_iter().map(|a| (a, FUNDS_CENTS)).collect();
    for outcome in outcomes.iter().filter(|o| o.moved) {
        *expected.get_mut(&outcome.from).expect("an account") -= outcome.cents;
        *expected.get_mut(&outcome.to).expect("an account") += outcome.cents;
    }
    for i in cluster.live() {
        let api = cluster.api(i);
        assert_eq!(balances(&api).await, expected, "{mode}: member {}", i + 1);
        for account in accounts() {
            let (_, body) = api
                .get(Some(ADMIN), &format!("/v1/wallet/accounts/{account}"))
                .await;
            assert_eq!(
                body["balances"]["USD"]["reserved"], "0.00",
                "{mode}: a reservation is left: {body}"
            );
        }
        // Deposits came from the bank's shards: they hold the rest.
        let (_, bank) = api
            .get(Some(ADMIN), "/v1/wallet/accounts/external:bank")
            .await;
        assert_eq!(
            bank["balances"]["USD"]["available"],
            format!("-{}.00", FUNDS_CENTS * accounts().len() as i64 / 100),
            "{mode}"
        );
        assert_moved(&api, &outcomes, 7).await;
    }
    // A failed transfer moved nothing: it is reported failed.
    for outcome in outcomes.iter().filter(|o| !o.moved).step_by(5) {
        let (_, body) = cluster
            .api(0)
            .get(Some(ADMIN), &format!("/v1/wallet/transfers/{}", outcome.id))
            .await;
        assert_eq!(body["status"], "failed", "{mode}: {body}");
    }
    // Every member's every partition audits from genesis to the head the
    // group agreed on.
    for node in &mut cluster.nodes {
        node.take().expect("running").stop();
    }
    for (i, status) in statuses.iter().enumerate() {
        let (passed, report, stderr) = crate::audit::audit(&cluster.data(i), &[]);
        assert!(passed, "{mode}: member {}: {report} {stderr}", i + 1);
        for p in 0..PARTITIONS {
            assert_eq!(
                report["partitions"][p]["chain_head"],
                status["partitions"][p]["chain_head"],
                "{mode}: member {}, partition {p}",
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
