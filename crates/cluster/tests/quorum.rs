//! The metadata quorum driven as the controller loop drives it, over a
//! network the test controls: elections, commits, a leader cut off, restarts
//! from what each node stored.

use std::collections::{BTreeMap, BTreeSet};

use sluice_cluster::state::ClusterState;
use sluice_cluster::{MetadataRecord, Quorum, Timing};

const TIMING: Timing = Timing { election_ticks: 10, heartbeat_ticks: 2 };

/// What a node made durable.
#[derive(Default, Clone)]
struct Disk {
    entries: Vec<Vec<u8>>,
    hard_state: Option<Vec<u8>>,
}

struct Node {
    quorum: Option<Quorum>,
    disk: Disk,
    state: ClusterState,
}

struct Net {
    nodes: BTreeMap<i32, Node>,
    /// Nodes whose messages, both ways, are dropped.
    cut: BTreeSet<i32>,
    in_flight: Vec<(i32, i32, Vec<u8>)>,
}

impl Net {
    fn new(ids: &[i32]) -> Net {
        let mut nodes = BTreeMap::new();
        for &id in ids {
            let quorum = Quorum::open(id, ids, TIMING, &[], None).unwrap();
            nodes.insert(id, Node { quorum: Some(quorum), disk: Disk::default(), state: ClusterState::default() });
        }
        Net { nodes, cut: BTreeSet::new(), in_flight: Vec::new() }
    }

    fn ids(&self) -> Vec<i32> {
        self.nodes.keys().copied().collect()
    }

    /// One round: every node ticks, messages are delivered, outputs handled.
    fn step(&mut self) {
        for node in self.nodes.values_mut() {
            if let Some(q) = node.quorum.as_mut() {
                q.tick();
            }
        }
        for _ in 0..5 {
            self.deliver();
            self.poll_all();
        }
    }

    fn deliver(&mut self) {
        for (from, to, bytes) in std::mem::take(&mut self.in_flight) {
            if self.cut.contains(&from) || self.cut.contains(&to) {
                continue;
            }
            if let Some(q) = self.nodes.get_mut(&to).and_then(|n| n.quorum.as_mut()) {
                q.receive(&bytes).unwrap();
            }
        }
    }

    fn poll_all(&mut self) {
        for (&id, node) in self.nodes.iter_mut() {
            let Some(q) = node.quorum.as_mut() else { continue };
            let out = q.poll().unwrap();
            node.disk.entries.extend(out.entries);
            if let Some(hs) = out.hard_state {
                node.disk.hard_state = Some(hs);
            }
            for (index, bytes) in out.committed {
                node.state.apply(index, &MetadataRecord::decode(&bytes).unwrap());
            }
            for (to, bytes) in out.messages {
                self.in_flight.push((id, to, bytes));
            }
        }
    }

    fn run_until(&mut self, rounds: usize, done: impl Fn(&Net) -> bool) {
        for _ in 0..rounds {
            if done(self) {
                return;
            }
            self.step();
        }
        assert!(done(self), "not done after {rounds} rounds");
    }

    /// The one leader that the uncut nodes agree on.
    fn leader(&self) -> Option<i32> {
        let leaders: BTreeSet<i32> = self
            .nodes
            .iter()
            .filter(|(id, _)| !self.cut.contains(id))
            .filter_map(|(_, n)| n.quorum.as_ref().filter(|q| q.is_leader()).map(|q| q.id()))
            .collect();
        (leaders.len() == 1).then(|| *leaders.iter().next().unwrap())
    }

    fn quorum(&mut self, id: i32) -> &mut Quorum {
        self.nodes.get_mut(&id).unwrap().quorum.as_mut().unwrap()
    }

    fn crash(&mut self, id: i32) {
        let node = self.nodes.get_mut(&id).unwrap();
        node.quorum = None;
        node.state = ClusterState::default();
    }

    fn restart(&mut self, id: i32) {
        let ids = self.ids();
        let node = self.nodes.get_mut(&id).unwrap();
        node.quorum =
            Some(Quorum::open(id, &ids, TIMING, &node.disk.entries, node.disk.hard_state.as_deref()).unwrap());
    }
}

fn register(id: i32) -> Vec<u8> {
    MetadataRecord::RegisterBroker {
        id,
        incarnation: format!("run-{id}"),
        endpoints: Vec::new(),
        rack: None,
        inter_broker: None,
    }
    .encode()
}

#[test]
fn three_voters_elect_one_leader_and_every_node_applies_what_it_commits() {
    let mut net = Net::new(&[0, 1, 2]);
    net.run_until(100, |n| {
        n.leader().is_some_and(|l| n.nodes.values().all(|node| node.quorum.as_ref().unwrap().leader() == Some(l)))
    });
    let leader = net.leader().unwrap();
    let term = net.quorum(leader).term();
    // A follower's proposal goes to the leader.
    let follower = net.ids().into_iter().find(|id| *id != leader).unwrap();
    net.quorum(follower).propose(register(7)).unwrap();
    net.quorum(leader).propose(register(8)).unwrap();
    net.run_until(50, |n| n.nodes.values().all(|node| node.state.brokers.len() == 2));
    for node in net.nodes.values() {
        assert_eq!(node.state.brokers.keys().copied().collect::<Vec<_>>(), vec![7, 8]);
    }
    let progress = net.quorum(leader).progress().unwrap();
    assert_eq!(progress.iter().map(|p| p.node).collect::<Vec<_>>(), vec![0, 1, 2]);
    let committed = net.quorum(leader).committed_index();
    assert!(progress.iter().all(|p| p.matched == committed), "{progress:?} vs {committed}");
    assert_eq!(net.quorum(leader).term(), term, "no election while the leader is heard");
    assert!(net.quorum(follower).progress().is_none(), "only the leader knows progress");
}

#[test]
fn a_leader_cut_off_is_replaced_in_a_later_term_and_its_uncommitted_proposal_is_lost() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_until(100, |n| n.leader().is_some());
    let old = net.leader().unwrap();
    let old_term = net.quorum(old).term();
    net.quorum(old).propose(register(1)).unwrap();
    net.run_until(50, |n| n.nodes.values().all(|node| node.state.brokers.contains_key(&1)));
    net.cut.insert(old);
    // The cut-off leader takes a proposal it can never commit.
    net.quorum(old).propose(register(99)).unwrap();
    net.run_until(200, |n| n.leader().is_some_and(|l| l != old));
    let new = net.leader().unwrap();
    assert!(net.quorum(new).term() > old_term);
    net.quorum(new).propose(register(2)).unwrap();
    net.run_until(50, |n| n.nodes[&new].state.brokers.contains_key(&2));
    // check_quorum: the old leader steps down by itself within two election timeouts.
    net.run_until(2 * TIMING.election_ticks + 1, |n| !n.nodes[&old].quorum.as_ref().unwrap().is_leader());
    net.cut.clear();
    net.run_until(100, |n| n.nodes.values().all(|node| node.state.brokers.contains_key(&2)));
    for node in net.nodes.values() {
        assert!(!node.state.brokers.contains_key(&99), "an uncommitted proposal of a deposed leader never applies");
    }
    assert_eq!(net.leader(), Some(new), "pre-vote: the node that came back does not depose the leader");
}

#[test]
fn a_node_restarted_from_its_disk_rebuilds_the_same_state_and_catches_up() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_until(100, |n| n.leader().is_some());
    let leader = net.leader().unwrap();
    for id in 10..15 {
        net.quorum(leader).propose(register(id)).unwrap();
    }
    net.run_until(50, |n| n.nodes.values().all(|node| node.state.brokers.len() == 5));
    let victim = net.ids().into_iter().find(|id| *id != leader).unwrap();
    net.crash(victim);
    for id in 15..18 {
        net.quorum(leader).propose(register(id)).unwrap();
    }
    net.run_until(50, |n| n.nodes[&leader].state.brokers.len() == 8);
    net.restart(victim);
    net.run_until(100, |n| n.nodes[&victim].state.brokers.len() == 8);
    let expected = net.nodes[&leader].state.brokers.clone();
    assert_eq!(net.nodes[&victim].state.brokers, expected);
}

#[test]
fn the_whole_quorum_restarted_keeps_every_committed_record() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_until(100, |n| n.leader().is_some());
    let leader = net.leader().unwrap();
    net.quorum(leader).propose(register(5)).unwrap();
    net.run_until(50, |n| n.nodes.values().all(|node| node.state.brokers.contains_key(&5)));
    let term = net.quorum(leader).term();
    for id in net.ids() {
        net.crash(id);
    }
    for id in net.ids() {
        net.restart(id);
    }
    net.run_until(200, |n| n.leader().is_some() && n.nodes.values().all(|node| node.state.brokers.contains_key(&5)));
    let leader = net.leader().unwrap();
    assert!(net.quorum(leader).term() > term, "the restarted voters remember their term");
}

#[test]
fn a_single_voter_leads_at_once_and_commits_alone() {
    let mut net = Net::new(&[0]);
    net.run_until(5, |n| n.leader() == Some(0));
    net.quorum(0).propose(register(0)).unwrap();
    net.run_until(5, |n| n.nodes[&0].state.brokers.contains_key(&0));
    net.crash(0);
    net.restart(0);
    net.run_until(5, |n| n.leader() == Some(0) && n.nodes[&0].state.brokers.contains_key(&0));
}

#[test]
fn a_stored_log_with_a_gap_is_refused() {
    let mut net = Net::new(&[1]);
    net.run_until(5, |n| n.leader() == Some(1));
    net.quorum(1).propose(register(1)).unwrap();
    net.quorum(1).propose(register(2)).unwrap();
    net.run_until(5, |n| n.nodes[&1].state.brokers.len() == 2);
    let mut entries = net.nodes[&1].disk.entries.clone();
    entries.remove(1);
    assert!(Quorum::open(1, &[1], TIMING, &entries, None).is_err());
    assert!(Quorum::open(1, &[1], TIMING, &[b"not an entry".to_vec()], None).is_err());
}

#[test]
fn an_observer_reads_the_committed_records_from_any_voter_in_pages_and_nothing_uncommitted() {
    let mut net = Net::new(&[1, 2, 3]);
    net.run_until(100, |n| n.leader().is_some());
    let leader = net.leader().unwrap();
    for id in 10..20 {
        net.quorum(leader).propose(register(id)).unwrap();
    }
    net.run_until(100, |n| n.nodes.values().all(|node| node.state.brokers.len() == 10));
    let committed = net.quorum(leader).committed_index();
    // From the start, a page at a time: every registration once, in log order.
    let follower = net.ids().into_iter().find(|id| *id != leader).unwrap();
    for voter in [leader, follower] {
        let mut from = 1;
        let mut seen = Vec::new();
        loop {
            let (records, next) = net.quorum(voter).committed_records(from, 100).unwrap();
            assert!(next > from || from > committed, "a page moves on while records are committed");
            assert!(records.iter().all(|(index, _)| *index >= from && *index < next && *index <= committed));
            seen.extend(records.into_iter().map(|(index, bytes)| (index, MetadataRecord::decode(&bytes).unwrap())));
            if next == from {
                break;
            }
            from = next;
        }
        let ids: Vec<i32> = seen
            .iter()
            .map(|(_, r)| match r {
                MetadataRecord::RegisterBroker { id, .. } => *id,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(ids, (10..20).collect::<Vec<_>>(), "voter {voter}");
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    }
    // A proposal the leader holds but has not committed is not served.
    net.cut.insert(leader);
    net.quorum(leader).propose(register(99)).unwrap();
    net.poll_all();
    assert!(net.quorum(leader).last_index() > committed);
    let (records, next) = net.quorum(leader).committed_records(committed + 1, 1 << 20).unwrap();
    assert!(records.is_empty() && next == committed + 1, "{records:?} {next}");
}
