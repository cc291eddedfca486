//! One run, in phases: provision and connect agents (their tasks start
//! reading at once), connect idle and sending users, let the users go, wait
//! for them, close the agents behind a `ping` barrier, then check (reading
//! every conversation back with `history`) and report.

use std::sync::Arc;

use switchboard_protocol::Role;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout_at};

use crate::agent::{self, AgentOutcome, AgentPlan};
use crate::args::{Args, Mode, Plan};
use crate::check;
use crate::conn::{Conn, Identity};
use crate::connect::{agent_tokens, connect_stuck_agents, connect_users, count_cut_off};
use crate::error::LoadError;
use crate::fast_hash::FastSet;
use crate::history::{self, Conversation};
use crate::probe::Clock;
use crate::procfs::{cpu_seconds, resident_kib};
use crate::report::{Checks, CpuUsed, NodeShare, Report, ServerRss};
use crate::stats::{ErrorCounts, Latency};
use crate::user::{self, Schedule, UserOutcome, UserPlan};

pub async fn run(args: &Args, plan: Plan) -> Result<Report, LoadError> {
    let clock = Clock::start();
    let deadline = Instant::now() + plan.timeout;
    let tag: Arc<str> = run_tag().into();
    let pids = &args.server_pid;
    let rss_before = sum_over(pids, resident_kib);

    // Agents first, reading from the start: they are told about every user
    // that comes online, and a reader that lags is cut off.
    let agent_logins = timeout_at(deadline, agent_tokens(args, &tag, 'a', plan.agents))
        .await
        .map_err(|_| LoadError::SetupTimeout)??;
    let mut agents = Vec::new();
    for (index, (name, token)) in (0..).zip(&agent_logins) {
        let who = Identity {
            role: Role::Agent,
            name,
            token: Some(token),
        };
        let conn = timeout_at(deadline, Conn::open(plan.node(index), who))
            .await
            .map_err(|_| LoadError::SetupTimeout)??;
        let (finish, finished) = oneshot::channel();
        let agent_plan = AgentPlan {
            tag: Arc::clone(&tag),
            clock,
            deadline,
        };
        agents.push((finish, tokio::spawn(agent::run(conn, agent_plan, finished))));
    }

    // Stuck agents subscribe, then are never read from again.
    let stuck = timeout_at(deadline, connect_stuck_agents(args, &tag, &plan))
        .await
        .map_err(|_| LoadError::SetupTimeout)??;

    // Idle users keep only their socket, not the codec's buffers.
    let idle = connect_users(&plan, &tag, 'i', plan.idle, deadline, Conn::into_stream).await?;
    let senders = connect_users(&plan, &tag, 'u', plan.users, deadline, Some).await?;
    let rss_connected = sum_over(pids, resident_kib);

    let start_us = clock.now_us();
    let cpu_before = Cpu::now(pids);
    let schedule = match plan.mode {
        Mode::Closed { window, messages } => Schedule::Closed { window, messages },
        Mode::Open { rate, total } => Schedule::Open {
            rate,
            users: plan.users,
            total,
            start_us,
        },
    };
    let offered: u64 = (0..plan.users).map(|index| schedule.count(index)).sum();
    let mut tasks = Vec::with_capacity(senders.len());
    let mut tickers = Vec::new();
    for (index, conn) in (0..).zip(senders) {
        let ticks = matches!(schedule, Schedule::Open { .. }).then(|| {
            let (ticker, ticks) = mpsc::unbounded_channel();
            tickers.push(ticker);
            ticks
        });
        let user_plan = UserPlan {
            index,
            tag: Arc::clone(&tag),
            clock,
            deadline,
            schedule,
            ticks,
        };
        tasks.push(tokio::spawn(user::run(conn, user_plan)));
    }
    let std_deadline = deadline.into_std();
    let pacer =
        tokio::task::spawn_blocking(move || user::pace(schedule, clock, std_deadline, tickers));
    let mut users: Vec<UserOutcome> = Vec::with_capacity(tasks.len());
    for task in tasks {
        users.push(task.await?);
    }
    pacer.await?;
    // Every reply is in, so a ping now comes back after every delivery.
    let mut agent_outcomes: Vec<AgentOutcome> = Vec::with_capacity(agents.len());
    let handles: Vec<_> = agents
        .into_iter()
        .map(|(finish, handle)| {
            let _ = finish.send(());
            handle
        })
        .collect();
    for handle in handles {
        agent_outcomes.push(handle.await?);
    }
    let cpu = Cpu::now(pids).since(&cpu_before);
    let rss_end = sum_over(pids, resident_kib);
    drop(idle);
    let stuck_cut_off = count_cut_off(stuck).await;

    // The check reads after the clock stopped; it gets a --timeout of its own.
    // It signs in as one of the run's agents, or, in a run without agents,
    // as one provisioned for it now (none without --db: then it is skipped).
    let check_deadline = Instant::now() + plan.timeout;
    let checker = match agent_logins.first() {
        Some(agent) => Some(agent.clone()),
        None => timeout_at(check_deadline, agent_tokens(args, &tag, 'c', 1))
            .await
            .map_err(|_| LoadError::CheckTimeout)??
            .into_iter()
            .next(),
    };
    let stored = match &checker {
        Some((name, token)) => {
            let who = Identity {
                role: Role::Agent,
                name,
                token: Some(token),
            };
            let conversations = conversations(&tag, &users);
            // Any node answers for the whole help desk; the first will do.
            let server = plan.node(0);
            history::check_stored(server, who, &tag, &conversations, check_deadline).await?
        }
        None => check::Check::skipped(),
    };
    Ok(build_report(
        args,
        &plan,
        Measured {
            users,
            agents: agent_outcomes,
            stuck_cut_off,
            start_us,
            offered,
            cpu,
            rss: (!pids.is_empty()).then(|| {
                let connections = u64::from(plan.users)
                    + u64::from(plan.idle)
                    + u64::from(plan.stuck_agents)
                    + agent_logins.len() as u64;
                ServerRss {
                    pids: pids.clone(),
                    before_kib: rss_before,
                    connected_kib: rss_connected,
                    end_kib: rss_end,
                    connections,
                    per_connection_bytes: match (rss_before, rss_connected) {
                        (Some(before), Some(connected)) if connections > 0 => {
                            Some((connected as f64 - before as f64) * 1024.0 / connections as f64)
                        }
                        _ => None,
                    },
                }
            }),
        },
        stored,
    ))
}

/// A name for this run that no earlier run used: user and agent names start
/// with it, and bodies carry it, so old data in the database is never mistaken
/// for this run's.
fn run_tag() -> String {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        bytes = nanos.to_le_bytes();
    }
    format!("L{}", hex::encode(bytes))
}

/// What each sending user was told was committed, to read back.
fn conversations<'a>(tag: &str, users: &'a [UserOutcome]) -> Vec<Conversation<'a>> {
    (0..)
        .zip(users)
        .map(|(index, user)| Conversation {
            user: format!("{tag}u{index}"),
            index,
            acks: &user.acks,
        })
        .collect()
}

struct Measured {
    users: Vec<UserOutcome>,
    agents: Vec<AgentOutcome>,
    /// Stuck agents the server had closed by the end.
    stuck_cut_off: u32,
    start_us: u64,
    offered: u64,
    /// CPU seconds used while messages flowed: (this process, the server).
    cpu: (Option<f64>, Option<f64>),
    rss: Option<ServerRss>,
}

/// `read` of every server process added up (a cluster's nodes together);
/// `None` without pids or when one cannot be read.
fn sum_over<T: std::iter::Sum<T>>(pids: &[u32], read: fn(u32) -> Option<T>) -> Option<T> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|pid| read(*pid)).sum()
}

/// CPU seconds used so far by this process and by the server.
struct Cpu {
    load: Option<f64>,
    server: Option<f64>,
}

impl Cpu {
    fn now(server_pids: &[u32]) -> Cpu {
        Cpu {
            load: cpu_seconds(std::process::id()),
            server: sum_over(server_pids, cpu_seconds),
        }
    }

    /// Seconds used since `before`: (this process, the server).
    fn since(&self, before: &Cpu) -> (Option<f64>, Option<f64>) {
        let delta = |now: Option<f64>, then: Option<f64>| Some(now? - then?);
        (
            delta(self.load, before.load),
            delta(self.server, before.server),
        )
    }
}

fn build_report(args: &Args, plan: &Plan, measured: Measured, stored: check::Check) -> Report {
    let Measured {
        users,
        agents,
        stuck_cut_off,
        start_us,
        offered,
        cpu,
        rss,
    } = measured;
    let mut errors = ErrorCounts::default();
    let mut ack_latency = Latency::new();
    let mut send_lag = Latency::new();
    let mut delivery_latency = Latency::new();
    for user in &users {
        errors.merge(&user.errors);
        ack_latency.merge(&user.ack_latency);
        send_lag.merge(&user.send_lag);
    }
    let mut agent_errors = ErrorCounts::default();
    for agent in &agents {
        errors.merge(&agent.errors);
        agent_errors.merge(&agent.errors);
        delivery_latency.merge(&agent.latency);
    }
    let acked: u64 = users.iter().map(|u| u.acks.len() as u64).sum();
    let deliveries: u64 = agents.iter().map(|a| a.delivered.len() as u64).sum();
    let last_ack_us = users
        .iter()
        .map(|u| u.last_ack_us)
        .max()
        .unwrap_or(start_us);
    let last_delivery_us = agents
        .iter()
        .map(|a| a.last_delivery_us)
        .max()
        .unwrap_or(start_us);
    let seconds = |until_us: u64| until_us.saturating_sub(start_us) as f64 / 1e6;
    let per_second = |count: u64, until_us: u64| {
        let s = seconds(until_us);
        if s > 0.0 { count as f64 / s } else { 0.0 }
    };

    let acked_ids: FastSet<u64> = users
        .iter()
        .flat_map(|u| u.acks.iter().map(|a| a.id))
        .collect();
    let delivered: Vec<&[u64]> = agents.iter().map(|a| a.delivered.as_slice()).collect();
    let user_acks: Vec<Vec<u64>> = users
        .iter()
        .map(|u| u.acks.iter().map(|a| a.id).collect())
        .collect();
    let checks = Checks {
        delivered_exactly_once: check::delivered_exactly_once(&acked_ids, &delivered),
        commit_order: check::commit_order(&delivered, &user_acks),
        stored,
    };
    let passed = checks.passed() && errors.total() == 0 && acked == offered;
    let nodes = node_shares(plan, &users, agents.len() as u32);
    let (window, messages_per_user, offered_rate) = match plan.mode {
        Mode::Closed { window, messages } => (Some(window), Some(messages), None),
        Mode::Open { rate, .. } => (None, None, Some(rate)),
    };
    Report {
        mode: if offered_rate.is_some() {
            "open"
        } else {
            "closed"
        },
        server: args.server.clone(),
        nodes,
        users: plan.users,
        agents: agents.len() as u32,
        idle: plan.idle,
        stuck_agents: plan.stuck_agents,
        stuck_cut_off,
        window,
        messages_per_user,
        offered_rate,
        offered_messages: offered,
        elapsed_s: seconds(last_ack_us.max(last_delivery_us)),
        acked,
        acked_per_s: per_second(acked, last_ack_us),
        deliveries,
        deliveries_per_s: per_second(deliveries, last_delivery_us),
        ack_latency: ack_latency.summary(),
        delivery_latency: delivery_latency.summary(),
        send_lag: offered_rate.map(|_| send_lag.summary()),
        errors,
        agent_errors,
        server_rss: rss,
        cpu: CpuUsed::new(cpu.0, cpu.1, acked),
        checks,
        passed,
    }
}

/// Where the run's connections went, node by node, as [`Plan::node`] sent
/// them, with the acks of each node's users: counted after the run.
fn node_shares(plan: &Plan, users: &[UserOutcome], agents: u32) -> Vec<NodeShare> {
    let mut acked = vec![0u64; plan.servers.len()];
    for (index, user) in users.iter().enumerate() {
        acked[index % plan.servers.len()] += user.acks.len() as u64;
    }
    let users = plan.per_node(plan.users);
    let agents = plan.per_node(agents);
    let idle = plan.per_node(plan.idle);
    let stuck = plan.per_node(plan.stuck_agents);
    plan.servers
        .iter()
        .enumerate()
        .map(|(node, server)| NodeShare {
            server: server.to_string(),
            users: users[node],
            agents: agents[node],
            idle: idle[node],
            stuck_agents: stuck[node],
            acked: acked[node],
        })
        .collect()
}
