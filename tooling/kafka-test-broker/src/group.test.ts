import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GroupCoordinator, type JoinRequest } from './group.js';
import { ErrorCode } from './protocol.js';

const owner = {};

function req(memberId: string, extra: Partial<JoinRequest> = {}): JoinRequest {
  return {
    groupId: 'g',
    memberId,
    groupInstanceId: null,
    clientId: 'c',
    clientHost: '/127.0.0.1',
    sessionTimeout: 10_000,
    rebalanceTimeout: 5_000,
    protocolType: 'consumer',
    protocols: [{ name: 'RoundRobinAssigner', metadata: Buffer.from('m') }],
    requireKnownMemberId: false,
    ...extra,
  };
}

let coordinator: GroupCoordinator;

beforeEach(() => {
  vi.useFakeTimers();
  coordinator = new GroupCoordinator({
    minSessionTimeout: 6000,
    maxSessionTimeout: 60_000,
    initialRebalanceDelay: 0,
  });
});

afterEach(() => {
  coordinator.close();
  vi.useRealTimers();
});

/** Joins a fresh member and completes the rebalance with it alone or with whoever else is waiting. */
async function joinAlone(memberId = '') {
  const res = await coordinator.join(req(memberId), owner);
  expect(res.errorCode).toBe(ErrorCode.NONE);
  return res;
}

describe('GroupCoordinator', () => {
  it('hands out member ids with MEMBER_ID_REQUIRED (JoinGroup v4+) and forgets unclaimed ones', async () => {
    const first = await coordinator.join(req('', { requireKnownMemberId: true }), owner);
    expect(first.errorCode).toBe(ErrorCode.MEMBER_ID_REQUIRED);
    expect(first.memberId).toMatch(/^c-/);
    const joined = await coordinator.join(req(first.memberId, { requireKnownMemberId: true }), owner);
    expect(joined).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 1, leaderId: first.memberId });
    expect(joined.members.map((m) => m.memberId)).toEqual([first.memberId]);

    const unclaimed = await coordinator.join(req('', { requireKnownMemberId: true }), owner);
    vi.advanceTimersByTime(10_001);
    expect((await coordinator.join(req(unclaimed.memberId), owner)).errorCode).toBe(
      ErrorCode.UNKNOWN_MEMBER_ID,
    );
  });

  it('rejects bad session timeouts, unknown members and mismatched protocols', async () => {
    expect((await coordinator.join(req('', { sessionTimeout: 100 }), owner)).errorCode).toBe(
      ErrorCode.INVALID_SESSION_TIMEOUT,
    );
    expect((await coordinator.join(req('nobody'), owner)).errorCode).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect((await coordinator.join(req('', { groupId: '' }), owner)).errorCode).toBe(
      ErrorCode.INVALID_GROUP_ID,
    );
    await joinAlone();
    const other = await coordinator.join(
      req('', { protocols: [{ name: 'Other', metadata: Buffer.alloc(0) }] }),
      owner,
    );
    expect(other.errorCode).toBe(ErrorCode.INCONSISTENT_GROUP_PROTOCOL);
  });

  it('waits up to the rebalance timeout for known members, then completes with those that rejoined', async () => {
    const a = await joinAlone();
    await coordinator.sync(
      'g',
      1,
      a.memberId,
      [{ memberId: a.memberId, assignment: Buffer.from('A') }],
      owner,
    );
    expect(coordinator.heartbeat('g', 1, a.memberId)).toBe(ErrorCode.NONE);

    // B joins: the group prepares a rebalance and A is told to rejoin through its heartbeat.
    let bDone = false;
    const b = coordinator.join(req(''), owner).then((r) => {
      bDone = true;
      return r;
    });
    await Promise.resolve();
    expect(coordinator.groups.get('g')!.state).toBe('PreparingRebalance');
    expect(coordinator.heartbeat('g', 1, a.memberId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    // A still commits for its generation while the rebalance is being prepared.
    expect(coordinator.checkCommit('g', 1, a.memberId)).toBe(ErrorCode.NONE);

    // A never rejoins: after the rebalance timeout (5 s) B alone forms generation 2.
    vi.advanceTimersByTime(4_999);
    await Promise.resolve();
    expect(bDone).toBe(false);
    vi.advanceTimersByTime(1);
    const res = await b;
    expect(res).toMatchObject({ errorCode: ErrorCode.NONE, generationId: 2, leaderId: res.memberId });
    expect([...coordinator.groups.get('g')!.members.keys()]).toEqual([res.memberId]);
    expect(coordinator.heartbeat('g', 1, a.memberId)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(coordinator.checkCommit('g', 1, a.memberId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
  });

  it('checks generations on sync, heartbeat and commit, and lets followers wait for the leader', async () => {
    const a = await coordinator.join(req(''), owner);
    const bJoin = coordinator.join(req(''), owner);
    // A rejoins during the rebalance B started; both then belong to generation 2.
    const aJoin = coordinator.join(req(a.memberId), owner);
    const [a2, b2] = await Promise.all([aJoin, bJoin]);
    expect(a2.generationId).toBe(2);
    expect(b2.generationId).toBe(2);
    expect(a2.leaderId).toBe(a.memberId);
    expect(a2.members).toHaveLength(2);
    expect(b2.members).toHaveLength(0);

    const followerSync = coordinator.sync('g', 2, b2.memberId, [], owner);
    expect((await coordinator.sync('g', 1, a.memberId, [], owner)).errorCode).toBe(
      ErrorCode.ILLEGAL_GENERATION,
    );
    expect(coordinator.checkCommit('g', 2, a.memberId)).toBe(ErrorCode.REBALANCE_IN_PROGRESS);
    const leaderSync = await coordinator.sync(
      'g',
      2,
      a.memberId,
      [
        { memberId: a.memberId, assignment: Buffer.from('for-a') },
        { memberId: b2.memberId, assignment: Buffer.from('for-b') },
      ],
      owner,
    );
    expect(String(leaderSync.assignment)).toBe('for-a');
    expect(String((await followerSync).assignment)).toBe('for-b');
    expect(coordinator.heartbeat('g', 2, b2.memberId)).toBe(ErrorCode.NONE);
    expect(coordinator.heartbeat('g', 1, b2.memberId)).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(coordinator.checkCommit('g', 1, b2.memberId)).toBe(ErrorCode.ILLEGAL_GENERATION);
    expect(coordinator.checkCommit('g', 2, b2.memberId)).toBe(ErrorCode.NONE);
    expect(coordinator.checkCommit('g', -1, '')).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
  });

  it('evicts a member whose session expires and empties the group when the last one leaves', async () => {
    const a = await joinAlone();
    await coordinator.sync('g', 1, a.memberId, [], owner);
    vi.advanceTimersByTime(9_999);
    expect(coordinator.heartbeat('g', 1, a.memberId)).toBe(ErrorCode.NONE);
    vi.advanceTimersByTime(10_000);
    const g = coordinator.groups.get('g')!;
    expect(g.members.size).toBe(0);
    expect(g.state).toBe('Empty');
    expect(g.generationId).toBe(2);
    expect(coordinator.checkCommit('g', -1, '')).toBe(ErrorCode.NONE);

    const b = await joinAlone();
    expect(b.generationId).toBe(3);
    expect(coordinator.leave('g', b.memberId)).toBe(ErrorCode.NONE);
    expect(coordinator.leave('g', b.memberId)).toBe(ErrorCode.UNKNOWN_MEMBER_ID);
    expect(g.state).toBe('Empty');
    expect(coordinator.deleteGroup('g')).toBe(ErrorCode.NONE);
    expect(coordinator.deleteGroup('g')).toBe(ErrorCode.GROUP_ID_NOT_FOUND);
  });
});
