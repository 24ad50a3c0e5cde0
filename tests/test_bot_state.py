"""var/state.db for the bot: sessions, the atomic commit of an answer (dedup and nonce claims), the log mover, expiry."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from wxcli.state import (Exchange, FlowEventRow, FollowRow, LogMover, MessageRow, Session, StateStore, connect,
                         settle)


@pytest.fixture
def path(tmp_path):
    return tmp_path / "var" / "state.db"


def count(path, table: str) -> int:
    """Rows in ``table``; ``queued``: log rows committed but not yet moved; ``claims``: the others."""
    where = {"queued": " WHERE k >= 'q'", "claims": " WHERE k < 'q'"}.get(table, "")
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT count(*) FROM {table if where == '' else 'claims'}{where}").fetchone()[0]
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
    assert {"messages", "follows", "flow_events", "leads", "sessions", "claims"} <= tables


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


def exchange(user: str, key: str, *, nonce: str = "n", digest: str = "d", rows=None, **changes) -> Exchange:
    return Exchange(user=user, dedup=(100, key), reply=f"<xml>{key}</xml>", nonce=(100, nonce, digest),
                    rows=rows if rows is not None else [message(user, key)], **changes)


def test_commit_claims_the_message_and_the_nonce_with_everything_else(path):
    store = StateStore(path)
    seen = store.lookup(100, "n", 100, "u:1", "u")
    assert seen.digest is None and seen.reply is None and seen.session is None
    session = Session(user="u", flow="f", node="n", started=1, updated=1)
    assert store.commit(exchange("u", "u:1", session=session, session_changed=True,
                                 leads=[(1.0, "f", "u", {"phone": "138"})]), seen) is None
    again = store.lookup(100, "n", 100, "u:1", "u")
    assert (again.digest, again.reply, again.session) == ("d", "<xml>u:1</xml>", session)
    assert (count(path, "leads"), count(path, "queued"), count(path, "messages")) == (1, 1, 0)


def test_a_message_answered_twice_is_committed_once(path):
    """Two workers answering the original and WeChat's retry at once: the second
    commit finds the first's reply and writes nothing."""
    first, second = StateStore(path), StateStore(path)
    seen_first = first.lookup(100, "n1", 100, "u:1", "u")
    seen_second = second.lookup(100, "n2", 100, "u:1", "u")
    lead = [(1.0, "f", "u", {"phone": "138"})]
    assert first.commit(exchange("u", "u:1", nonce="n1", leads=lead), seen_first) is None
    lost = second.commit(exchange("u", "u:1", nonce="n2", leads=lead), seen_second)
    assert lost is not None and lost.reply == "<xml>u:1</xml>"
    assert (count(path, "leads"), count(path, "queued"), count(path, "claims")) == (1, 1, 2)  # message + nonce


def test_a_nonce_reused_for_another_body_is_seen_by_the_commit(path):
    first, second = StateStore(path), StateStore(path)
    seen_first, seen_second = first.lookup(100, "n", 100, "u:1", "u"), second.lookup(100, "n", 100, "v:2", "v")
    assert first.commit(exchange("u", "u:1", digest="d1"), seen_first) is None
    lost = second.commit(exchange("v", "v:2", digest="d2"), seen_second)
    assert lost is not None and lost.digest == "d1" and lost.reply is None
    assert count(path, "claims") == 2 and count(path, "queued") == 1  # one message and its nonce


def test_a_session_changed_meanwhile_is_answered_again(path):
    store = StateStore(path)
    seen = store.lookup(100, "n1", 100, "u:1", "u")
    moved_on = Session(user="u", flow="f", node="second", started=1, updated=2)
    store.save(Exchange(user="u", session=moved_on, session_changed=True))
    fresh = store.commit(exchange("u", "u:1", nonce="n1", session=Session(user="u", flow="f", node="first",
                                                                           started=1, updated=1),
                                  session_changed=True), seen)
    assert fresh is not None and fresh.session == moved_on and fresh.reply is None
    assert store.load_session("u") == moved_on and count(path, "claims") == 0


def test_the_mover_moves_committed_rows_into_the_log(path):
    store = StateStore(path)
    mover = LogMover(store, interval=0.05)
    try:
        for i in range(50):
            store.commit(exchange("u", f"u:{i}", nonce=str(i)), store.lookup(100, str(i), 100, f"u:{i}", "u"))
        store.save(Exchange(user="u", rows=[FollowRow(time=1.0, user="u", event="subscribe"),
                                            FlowEventRow(time=1.0, user="u", flow="f", node="n", kind="node")]))
        deadline = time.time() + 3
        while count(path, "messages") < 50 and time.time() < deadline:
            time.sleep(0.02)
        assert (count(path, "messages"), count(path, "follows"), count(path, "flow_events")) == (50, 1, 1)
        assert count(path, "queued") == 0
    finally:
        mover.close()


def test_rows_left_in_the_queue_by_a_killed_server_are_settled_by_the_next_reader(path):
    store = StateStore(path)
    store.save(Exchange(user="u", rows=[message("u", "kept")]))
    conn = connect(path)
    settle(conn)
    assert conn.execute("SELECT text FROM messages").fetchall() == [("kept",)]
    assert count(path, "queued") == 0
    conn.close()


def test_the_mover_survives_a_locked_database(path):
    store = StateStore(path, timeout=0.1)
    store.save(Exchange(user="u", rows=[message("u", "kept")]))
    blocker = connect(path, timeout=0.1)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError):
        store.move_log()
    blocker.execute("ROLLBACK")
    assert store.move_log() == 1  # the rows stayed queued and were moved now
    assert count(path, "messages") == 1


def test_expire_forgets_old_message_and_nonce_claims(path):
    store = StateStore(path)
    now = time.time()
    for when, key in ((int(now - 5000), "old"), (int(now), "new")):
        store.commit(Exchange(user="u", dedup=(when, key), reply="a", nonce=(when, key, "d")),
                     store.lookup(when, key, when, key, "u"))
    store.expire(now, ttl=900)
    assert count(path, "claims") == 2  # the new message and its nonce
    assert store.lookup(int(now), "new", int(now), "new", "u")[:2] == ("d", "a")


def test_dedup_and_nonce_records_of_an_older_state_db_are_carried_over(path):
    path.parent.mkdir(parents=True)
    old = sqlite3.connect(path)
    old.executescript("""
        CREATE TABLE dedup (id INTEGER PRIMARY KEY, ctime INTEGER NOT NULL, key TEXT NOT NULL, reply TEXT,
                            time REAL NOT NULL);
        CREATE TABLE nonces (ts INTEGER NOT NULL, nonce TEXT NOT NULL, digest TEXT NOT NULL, time REAL NOT NULL,
                             PRIMARY KEY (ts, nonce)) WITHOUT ROWID;
        INSERT INTO dedup (ctime, key, reply, time) VALUES (100, 'u:1', '<xml/>', 1);
        INSERT INTO nonces VALUES (100, 'n', 'd1', 1);
    """)
    old.close()
    store = StateStore(path)
    assert store.lookup(100, "n", 100, "u:1", "u")[:2] == ("d1", "<xml/>")
    with store.connection() as conn:
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name IN ('dedup', 'nonces')").fetchall()


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


def test_a_report_counts_rows_a_killed_server_left_queued(path):
    from wxcli.stats.query import open_state

    StateStore(path).save(Exchange(user="u", rows=[message("u", "answered just before kill -9")]))
    conn = open_state(path)
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    conn.close()
