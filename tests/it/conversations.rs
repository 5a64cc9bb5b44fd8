//! Conversations, the inbox's unit: one per (number, contact), created by the first
//! message, moved by every message, reopened by an inbound one, never rolled back by a
//! late delivery; the 24-hour window follows the customer's last message.

use crate::common::TestApp;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

async fn inbound(app: &TestApp, phone_id: &str, wamid: &str, from: &str, ts: i64, text: &str) {
    crate::common::inbound_text(app, SECRET, phone_id, wamid, from, "Siti", ts, text).await;
}

type Conv = (i64, String, String, i64, Option<i64>, String);

async fn conversations(app: &TestApp) -> Vec<Conv> {
    app.state
        .db
        .read(|c| {
            let mut st = c.prepare(
                "SELECT id, phone_number_id, status, last_message_at, last_inbound_at, preview FROM conversations ORDER BY id",
            )?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn messages_gather_into_conversations() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    for n in ["106540352242922", "106540352242933"] {
        assert_eq!(
            crate::common::connect_number(&admin, n, SECRET, "tok", "80")
                .await
                .status,
            303
        );
    }
    // Times near now: a sender's time is kept within 30 days of the receipt.
    let t0 = app.clock.unix() - 86_400;
    inbound(&app, "106540352242922", "wamid.1", "62811", t0, "halo").await;
    inbound(&app, "106540352242922", "wamid.2", "62811", t0 + 100, "ada stok?").await;
    // A late delivery of an older message does not roll the conversation back.
    inbound(&app, "106540352242922", "wamid.0", "62811", t0 - 1000, "pesan lama").await;
    let c = conversations(&app).await;
    assert_eq!(c.len(), 1, "one conversation per number and contact");
    assert_eq!(
        (c[0].2.as_str(), c[0].3, c[0].4, c[0].5.as_str()),
        ("open", t0 + 100, Some(t0 + 100), "ada stok?")
    );
    let linked: i64 = app
        .state
        .db
        .read(|c| {
            Ok(
                c.query_row("SELECT count(*) FROM messages WHERE conversation_id = 1", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(linked, 3);
    // The same person on another number is another conversation.
    inbound(&app, "106540352242933", "wamid.3", "62811", t0 + 200, "nomor lain").await;
    assert_eq!(conversations(&app).await.len(), 2);
    // A new message reopens a resolved conversation.
    app.state
        .db
        .write(|c| {
            Ok(
                c.execute("UPDATE conversations SET status = 'resolved' WHERE id = 1", [])
                    .map(|_| ())?,
            )
        })
        .await
        .unwrap();
    inbound(&app, "106540352242922", "wamid.4", "62811", t0 + 300, "lupa satu hal").await;
    assert_eq!(conversations(&app).await[0].2, "open");
    // The 24-hour window.
    assert_eq!(
        whacaster::inbox::window_left(Some(1_764_000_300), 1_764_000_300 + 3600),
        23 * 3600
    );
    assert_eq!(
        whacaster::inbox::window_left(Some(1_764_000_300), 1_764_000_300 + 25 * 3600),
        0
    );
    assert_eq!(whacaster::inbox::window_left(None, 0), 0);
}

#[tokio::test]
async fn a_reply_moves_the_conversation_without_reopening_it() {
    let graph = crate::fake_graph::FakeGraph::start();
    let (app, _admin) = crate::common::app_with_number(&graph, SECRET, "tok", "80", |_| {}).await;
    let t0 = app.clock.unix() - 3600;
    inbound(&app, "106540352242922", "wamid.in", "62811", t0, "halo").await;
    app.state
        .db
        .write(|c| {
            Ok(c.execute("UPDATE conversations SET status = 'resolved'", [])
                .map(|_| ())?)
        })
        .await
        .unwrap();
    let now = app.clock.unix();
    app.state
        .db
        .write(move |c| {
            let msg = whacaster::whatsapp::outbound::OutMessage::Text {
                body: "Masih ada, kak".into(),
                preview_url: false,
                reply_to: None,
            };
            Ok(whacaster::whatsapp::outbox::enqueue(
                c,
                1,
                "+62811",
                Some(1),
                &msg,
                whacaster::whatsapp::outbox::Origin::Agent,
                now,
            )?)
        })
        .await
        .unwrap();
    app.state.outbox_bell.ring();
    for _ in 0..100 {
        let c = conversations(&app).await;
        if c[0].5 == "Masih ada, kak" {
            assert_eq!(c[0].2, "resolved", "our own reply does not reopen it");
            assert_eq!(c[0].4, Some(t0), "the window follows the customer, not us");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    panic!(
        "the reply did not reach the conversation: {:?}",
        conversations(&app).await
    );
}

#[tokio::test]
async fn snoozed_conversations_wake_up_on_time() {
    let app = TestApp::start().await;
    let (admin, _) = app.admin("owner@toko.id").await;
    assert_eq!(
        crate::common::connect_number(&admin, "106540352242922", SECRET, "tok", "80")
            .await
            .status,
        303
    );
    inbound(&app, "106540352242922", "wamid.z", "62811", 1_764_000_000, "nanti ya").await;
    let until = app.clock.unix() + 3600;
    app.state
        .db
        .write(move |c| {
            Ok(c.execute(
                "UPDATE conversations SET status = 'snoozed', snoozed_until = ?1",
                [until],
            )
            .map(|_| ())?)
        })
        .await
        .unwrap();
    let first = whacaster::inbox::wake_snoozed_conversations(&app.state.db, app.clock.unix())
        .await
        .unwrap();
    assert!(first.starts_with("0 "), "{first}");
    assert_eq!(conversations(&app).await[0].2, "snoozed");
    app.clock.advance(3601);
    let second = whacaster::inbox::wake_snoozed_conversations(&app.state.db, app.clock.unix())
        .await
        .unwrap();
    assert!(second.starts_with("1 "), "{second}");
    assert_eq!(conversations(&app).await[0].2, "open");
}
