//! How long one frame takes: a 10,000-message conversation next to a
//! 1,000-customer queue (agent mode), the same conversation in user mode, and
//! the agent view scrolled far up. Run with
//! `cargo bench -p switchboard-tui --bench render`; target: well under 16 ms.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use switchboard_protocol::{Body, Message, Name, Priority, Role, ServerFrame, Timestamp};
use switchboard_tui::app::{Action, App, Mode, Msg, NetEvent, update};
use switchboard_tui::ui;

const MESSAGES: u64 = 10_000;
const CUSTOMERS: u64 = 1_000;
const FRAMES: u32 = 200;
const SIZE: (u16, u16) = (200, 60);

fn name(s: &str) -> Name {
    Name::parse(s).expect("valid name")
}

fn message(id: u64, user: &str, agent: Option<&str>, priority: Priority) -> Message {
    let body = format!(
        "message {id}: the quick brown fox jumps over the lazy dog, then explains \
         at some length why the parcel never arrived and what should happen next"
    );
    Message {
        id,
        ts: Timestamp::from_micros(1_800_000_000_000_000 + id as i64 * 1_000_000),
        user: name(user),
        from: if agent.is_some() {
            Role::Agent
        } else {
            Role::User
        },
        agent: agent.map(name),
        body: Body::parse(&body, 4096).expect("valid body"),
        priority,
        note: false,
    }
}

fn feed(app: &mut App, m: Message) {
    update(
        app,
        Msg::Net(NetEvent::Frame(ServerFrame::Message { message: m })),
    );
}

fn app(mode: Mode) -> App {
    let me = if mode == Mode::Agent { "alice" } else { "big" };
    let mut app = App::new(
        mode,
        name(me),
        "127.0.0.1:7878".into(),
        "k".into(),
        Timestamp::now(),
    );
    update(&mut app, Msg::Resize(SIZE.0, SIZE.1));
    update(
        &mut app,
        Msg::Net(NetEvent::Connected {
            node: "127.0.0.1:7878".into(),
            agents_online: Some(3),
        }),
    );
    let mut id = 0;
    for i in 0..MESSAGES {
        id += 1;
        // The last two are the customer's, unanswered: "big" waits longest,
        // so it tops the queue and is the conversation on screen.
        let agent = (i % 2 == 1 && i < MESSAGES - 2).then_some("alice");
        feed(&mut app, message(id, "big", agent, Priority::Urgent));
    }
    if mode == Mode::Agent {
        for c in 0..CUSTOMERS - 1 {
            id += 1;
            let priority = Priority::MOST_URGENT_FIRST[(c % 4) as usize];
            feed(
                &mut app,
                message(id, &format!("customer{c}"), None, priority),
            );
        }
    }
    app
}

fn time_frames(label: &str, app: &App) -> Duration {
    let mut terminal = Terminal::new(TestBackend::new(SIZE.0, SIZE.1)).expect("test terminal");
    // Warm up (allocations, first diff).
    terminal.draw(|f| ui::draw(f, app)).expect("draw");
    let start = Instant::now();
    for _ in 0..FRAMES {
        // A forced full redraw each time: the worst case, nothing reused.
        terminal.clear().expect("clear");
        terminal
            .draw(|f| ui::draw(f, black_box(app)))
            .expect("draw");
    }
    let per_frame = start.elapsed() / FRAMES;
    println!(
        "{label:<58} {:>8.3} ms/frame",
        per_frame.as_secs_f64() * 1e3
    );
    per_frame
}

fn main() {
    println!(
        "one frame at {}x{}, averaged over {FRAMES} frames (target: well under 16 ms)",
        SIZE.0, SIZE.1
    );
    let agent = app(Mode::Agent);
    assert_eq!(agent.conversations.len() as u64, CUSTOMERS);
    assert_eq!(
        agent.current().map(|c| c.messages.len() as u64),
        Some(MESSAGES)
    );
    time_frames(
        "agent: 1,000-customer queue + 10,000-message conversation",
        &agent,
    );
    let user = app(Mode::User);
    time_frames("user: 10,000-message conversation", &user);
    let mut scrolled = agent.clone();
    for _ in 0..100 {
        update(&mut scrolled, Msg::Action(Action::ScrollUp));
    }
    time_frames("agent: same, scrolled up 100 pages", &scrolled);
}
