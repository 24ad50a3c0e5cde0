"""var/state.db for the bot: sessions, the batched log writer, dedup and nonce records, expiry."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from wxcli.state import Exchange, FlowEventRow, FollowRow, LogWriter, MessageRow, Session, StateStore, connect


@pytest.fixture
def path(tmp_path):
    return tmp_path / "var" / "state.db"


def count(path, table: str) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def message(user: str, text: str) -> MessageRow:
    return MessageRow(time=time.time(), user=user, msg_type="text", text=text, rule="exact",
                      reply_kind="text", unanswered=0, latency_ms=1.0)


def test_state_is_wal_with_the_shared_tables(path):
    store = StateStore(path)
    with store.connection() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: no fsync per commit
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"messages", "follows", "flow_events", "leads", "sessions", "dedup", "nonces"} <= tables


def test_opening_waits_while_another_worker_creates_the_database(path):
    path.parent.mkdir(parents=True)
    creator = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    creator.execute("BEGIN IMMEDIATE")
    creator.execute("CREATE TABLE first_worker (x)")
    threading.Timer(0.3, creator.execute, args=("COMMIT",)).start()
    conn = connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    creator.close()


def test_session_round_trip_and_delete(path):
    store = StateStore(path)
    session = Session(user="u", flow="card", node="choose", entry="card", vars={"name": "李"},
                      history=["card/x"], misses=1, menu=[], started=1.0, updated=2.0)
    store.save(Exchange(user="u", session=session, session_changed=True))
    assert StateStore(path).load_session("u") == session
    store.save(Exchange(user="u", session=None, session_changed=True))
    assert store.load_session("u") is None


def test_a_state_db_from_before_the_unanswered_streak_is_upgraded(path):
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE sessions (user TEXT PRIMARY KEY, flow TEXT, node TEXT, entry TEXT,"
                " vars TEXT NOT NULL DEFAULT '{}', history TEXT NOT NULL DEFAULT '[]', misses INTEGER NOT NULL"
                " DEFAULT 0, menu TEXT NOT NULL DEFAULT '[]', started REAL NOT NULL, updated REAL NOT NULL)"
                " WITHOUT ROWID")
    old.execute("INSERT INTO sessions VALUES ('u', 'card', 'choose', 'card', '{}', '[]', 0, '[]', 1.0, 2.0)")
    old.commit()
    old.close()
    store, again = StateStore(path), StateStore(path)  # a second opener finds it upgraded
    assert store.load_session("u") == Session(user="u", flow="card", node="choose", entry="card",
                                              started=1.0, updated=2.0)
    streak = Session(user="v", started=3.0, updated=3.0, unanswered=[3.0, 4.0])
    assert not streak.empty
    again.save(Exchange(user="v", session=streak, session_changed=True))
    assert store.load_session("v") == streak


def test_an_empty_session_is_deleted(path):
    store = StateStore(path)
    store.save(Exchange(user="u", session=Session(user="u", flow="f", node="n", started=1, updated=1), session_changed=True))
    store.save(Exchange(user="u", session=Session(user="u", started=1, updated=2), session_changed=True))
    assert store.load_session("u") is None


def test_nothing_written_when_nothing_changed(path):
    store = StateStore(path)
    store.save(Exchange(user="u"))
    assert count(path, "sessions") == 0


def test_leads_written_with_the_session(path):
    store = StateStore(path)
    store.save(Exchange(user="u", session=None, session_changed=True, leads=[(1.0, "card", "u", {"phone": "138"})]))
    db = sqlite3.connect(path)
    assert db.execute("SELECT flow, user, data FROM leads").fetchall() == [("card", "u", '{"phone": "138"}')]


def test_log_writer_batches_in_the_background(path):
    StateStore(path)
    writer = LogWriter(path, interval=0.05)
    try:
        for i in range(50):
            writer.add(message("u", str(i)))
        assert count(path, "messages") < 50  # add() never writes
        deadline = time.time() + 3
        while count(path, "messages") < 50 and time.time() < deadline:
            time.sleep(0.02)
        assert count(path, "messages") == 50
    finally:
        writer.close()


def test_log_writer_flushes_on_close(path):
    StateStore(path)
    writer = LogWriter(path, interval=60)
    for i in range(10):
        writer.add(message("u", str(i)))
    writer.add(FollowRow(time=1.0, user="u", event="subscribe"))
    writer.add(FlowEventRow(time=1.0, user="u", flow="f", node="n", kind="node"))
    writer.close()
    assert (count(path, "messages"), count(path, "follows"), count(path, "flow_events")) == (10, 1, 1)


def test_pending_records_are_visible_before_the_batch_lands(path):
    store = StateStore(path)
    writer = LogWriter(path, interval=60)
    try:
        writer.record(Exchange(dedup=(100, "u:1"), reply="<xml/>", nonce=(100, "n", "d1")))
        assert writer.pending_reply(100, "u:1") == "<xml/>"
        assert writer.pending_digest(100, "n") == "d1"
        assert store.lookup(100, "n", 100, "u:1", "u")[:2] == (None, None)
        writer.flush()
        assert writer.pending_reply(100, "u:1") is None
        assert store.lookup(100, "n", 100, "u:1", "u")[:2] == ("d1", "<xml/>")
    finally:
        writer.close()


def test_a_message_answered_twice_is_logged_once(path):
    """Two workers answering the same retry at once: the dedup record decides which row is kept."""
    StateStore(path)
    first, second = LogWriter(path, interval=60), LogWriter(path, interval=60)
    for writer in (first, second):
        writer.record(Exchange(dedup=(100, "u:1"), reply="<xml/>", rows=[message("u", "hi")]))
    second.record(Exchange(dedup=(100, "v:2"), reply="<xml/>", rows=[message("v", "new")]))
    first.close()
    second.close()
    assert count(path, "messages") == 2 and count(path, "dedup") == 2


def test_log_writer_survives_a_locked_database(path):
    StateStore(path)
    blocker = connect(path, timeout=0.1)
    blocker.execute("BEGIN IMMEDIATE")
    writer = LogWriter(path, interval=60)
    writer._connection = connect(path, timeout=0.1)
    writer.add(message("u", "kept"))
    with pytest.raises(sqlite3.OperationalError):
        writer.flush()
    blocker.execute("ROLLBACK")
    assert writer.flush() == 1  # the failed batch was kept and written now
    writer.close()
    assert count(path, "messages") == 1


def test_expire_forgets_old_dedup_and_nonces(path):
    store = StateStore(path)
    writer = LogWriter(path, interval=60)
    now = time.time()
    writer.record(Exchange(dedup=(int(now - 5000), "old"), reply="a", nonce=(int(now - 5000), "n1", "d")))
    writer.record(Exchange(dedup=(int(now), "new"), reply="b", nonce=(int(now), "n2", "d")))
    writer.close()
    store.expire(now, dedup_ttl=900, nonce_ttl=600)
    assert (count(path, "dedup"), count(path, "nonces")) == (1, 1)


def test_connections_are_lent_one_at_a_time(path):
    store = StateStore(path)
    with store.connection() as first:
        with store.connection() as second:
            assert first is not second  # in use: another request gets its own
    with store.connection() as again:
        assert again in (first, second)  # returned connections are reused
    seen = []

    def borrow():
        with store.connection() as conn:
            seen.append(conn)

    thread = threading.Thread(target=borrow)
    thread.start()
    thread.join()
    assert seen[0] in (first, second)


def test_pool_starts_afresh_after_a_fork(path, monkeypatch):
    store = StateStore(path)
    with store.connection() as parent:
        pass
    monkeypatch.setattr("os.getpid", lambda: -1)
    with store.connection() as child:
        assert child is not parent
