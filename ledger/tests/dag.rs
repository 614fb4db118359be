//! The conflict DAG orders exactly the conflicting pairs, checked against the naive quadratic
//! definition: same ordering constraints, no edge between transactions that do not conflict.

mod support;

use banyan_core::ids::{Address, ChainId};
use banyan_core::tx::{AccessSet, StateKey};
use banyan_dag::{ConflictDag, ExecError, Vm};
use proptest::prelude::*;
use support::{ledger, random_block, Rng};

/// Random access sets over `keys` keys: each transaction reads and writes a few distinct ones.
fn access_sets(seed: u64, n: usize, keys: usize) -> Vec<AccessSet> {
    let mut rng = Rng::new(seed);
    let pool: Vec<StateKey> = (0..keys)
        .map(|i| StateKey::Account(Address([i as u8; 32])))
        .collect();
    (0..n)
        .map(|_| {
            let mut set = AccessSet::default();
            let count = 1 + rng.below(4.min(keys));
            let mut chosen: Vec<StateKey> = Vec::new();
            while chosen.len() < count {
                let k = rng.pick(&pool);
                if !chosen.contains(&k) {
                    chosen.push(k);
                }
            }
            for k in chosen {
                if rng.chance(40) {
                    set.reads.push(k);
                } else {
                    set.writes.push(k);
                }
            }
            set
        })
        .collect()
}

fn conflict(a: &AccessSet, b: &AccessSet) -> bool {
    a.writes
        .iter()
        .any(|k| b.reads.contains(k) || b.writes.contains(k))
        || b.writes.iter().any(|k| a.reads.contains(k))
}

/// Reachability in the DAG, by a forward sweep from each transaction.
fn reachable(dag: &ConflictDag) -> Vec<Vec<bool>> {
    let n = dag.len();
    let mut reach = vec![vec![false; n]; n];
    for i in (0..n).rev() {
        let succ: Vec<usize> = dag.successors(i).collect();
        for s in succ {
            reach[i][s] = true;
            let row = reach[s].clone();
            for (j, r) in row.into_iter().enumerate() {
                reach[i][j] |= r;
            }
        }
    }
    reach
}

/// Longest path, in transactions, of the naive DAG with an edge for every conflicting pair.
fn naive_critical_path(sets: &[AccessSet]) -> usize {
    let mut depth = vec![1usize; sets.len()];
    for j in 0..sets.len() {
        for i in 0..j {
            if conflict(&sets[i], &sets[j]) {
                depth[j] = depth[j].max(depth[i] + 1);
            }
        }
    }
    depth.into_iter().max().unwrap_or(0)
}

fn check_against_naive(sets: &[AccessSet], threads: usize) {
    let dag = ConflictDag::build(sets, threads).expect("valid access sets");
    let n = sets.len();
    assert_eq!(dag.len(), n);
    // Edges go forward, between conflicting transactions only.
    let mut indegree = vec![0usize; n];
    for i in 0..n {
        for s in dag.successors(i) {
            assert!(i < s, "edge {i} -> {s} goes backwards");
            assert!(
                conflict(&sets[i], &sets[s]),
                "edge {i} -> {s} without a conflict"
            );
            indegree[s] += 1;
        }
    }
    for (j, d) in indegree.iter().enumerate() {
        assert_eq!(dag.predecessor_count(j), *d, "predecessor count of {j}");
    }
    // Every conflicting pair is ordered by a path.
    let reach = reachable(&dag);
    for j in 0..n {
        for i in 0..j {
            if conflict(&sets[i], &sets[j]) {
                assert!(reach[i][j], "{i} and {j} conflict but are not ordered");
            }
        }
    }
    assert_eq!(dag.critical_path(), naive_critical_path(sets));
    // Linear size: at most two edges per access.
    let accesses: usize = sets.iter().map(|s| s.reads.len() + s.writes.len()).sum();
    assert!(dag.edge_count() <= 2 * accesses);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn dag_matches_naive_definition(seed in any::<u64>(), n in 0usize..80, keys in 1usize..10) {
        let sets = access_sets(seed, n, keys);
        for threads in [1, 2, 4] {
            check_against_naive(&sets, threads);
        }
    }
}

/// The ledger's real access sets, every kind.
#[test]
fn dag_of_ledger_blocks_matches_naive_definition() {
    for seed in 0..30 {
        let (_, txs) = random_block(seed, 100, 1 + (seed % 8) as usize, ChainId::MAIN);
        let vm = ledger(ChainId::MAIN);
        let sets: Vec<AccessSet> = txs.iter().map(|t| vm.access_set(t)).collect();
        for threads in [1, 3] {
            check_against_naive(&sets, threads);
        }
    }
}

#[test]
fn chain_and_independent_blocks() {
    let k = |i: u8| StateKey::Account(Address([i; 32]));
    // Everyone writes one key: a chain.
    let chain: Vec<AccessSet> = (0..50)
        .map(|_| AccessSet {
            reads: vec![],
            writes: vec![k(0)],
        })
        .collect();
    let dag = ConflictDag::build(&chain, 2).expect("valid");
    assert_eq!(dag.critical_path(), 50);
    assert_eq!(dag.edge_count(), 49);
    // Everyone writes its own key: no edge.
    let free: Vec<AccessSet> = (0..50)
        .map(|i| AccessSet {
            reads: vec![],
            writes: vec![k(i)],
        })
        .collect();
    let dag = ConflictDag::build(&free, 2).expect("valid");
    assert_eq!(dag.critical_path(), 1);
    assert_eq!(dag.edge_count(), 0);
    // Readers of one key are free among themselves and wait for the write before them.
    let mut readers = vec![AccessSet {
        reads: vec![],
        writes: vec![k(0)],
    }];
    readers.extend((0..10).map(|_| AccessSet {
        reads: vec![k(0)],
        writes: vec![],
    }));
    readers.push(AccessSet {
        reads: vec![],
        writes: vec![k(0)],
    });
    let dag = ConflictDag::build(&readers, 1).expect("valid");
    assert_eq!(dag.critical_path(), 3);
    assert_eq!(dag.successors(0).count(), 10);
    assert_eq!(dag.predecessor_count(11), 10);
    let empty = ConflictDag::build(&[], 2).expect("valid");
    assert!(empty.is_empty());
    assert_eq!(empty.critical_path(), 0);
}

#[test]
fn malformed_access_sets_are_refused() {
    let k = StateKey::Account(Address([1; 32]));
    let dup = vec![
        AccessSet::default(),
        AccessSet {
            reads: vec![k],
            writes: vec![k],
        },
    ];
    for threads in [1, 2] {
        assert_eq!(
            ConflictDag::build(&dup, threads).err(),
            Some(ExecError::DuplicateKey { tx: 1, key: k })
        );
    }
    let many = vec![AccessSet {
        reads: vec![],
        writes: (0..=banyan_core::tx::MAX_ACCESS_KEYS as u8)
            .map(|i| StateKey::Account(Address([i; 32])))
            .collect(),
    }];
    assert!(matches!(
        ConflictDag::build(&many, 2),
        Err(ExecError::TooManyKeys { tx: 0, .. })
    ));
}
