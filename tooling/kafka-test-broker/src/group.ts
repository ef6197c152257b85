import { randomUUID } from 'node:crypto';
import { ErrorCode } from './protocol.js';

/** Group states, with Kafka's names. */
export type GroupState = 'Empty' | 'PreparingRebalance' | 'CompletingRebalance' | 'Stable';

/** One protocol a member offers in JoinGroup. */
export interface GroupProtocol {
  /** Protocol (assignor) name. */
  name: string;
  /** Member metadata for that protocol. */
  metadata: Buffer;
}

/** Outcome of a JoinGroup. */
export interface JoinResult {
  /** Kafka error code. */
  errorCode: number;
  /** Generation the member joined (-1 on error). */
  generationId: number;
  /** Selected protocol ('' on error). */
  protocolName: string;
  /** Leader member id ('' on error). */
  leaderId: string;
  /** This member's id. */
  memberId: string;
  /** All members with their metadata, only for the leader. */
  members: { memberId: string; groupInstanceId: string | null; metadata: Buffer }[];
}

/** Outcome of a SyncGroup. */
export interface SyncResult {
  /** Kafka error code. */
  errorCode: number;
  /** This member's assignment. */
  assignment: Buffer;
}

/** A committed offset. */
export interface CommittedOffset {
  /** Next offset to consume. */
  offset: number;
  /** Client metadata string. */
  metadata: string | null;
}

/** Something a pending response belongs to; cancelled when its connection closes. */
export type Owner = object;

interface Pending<T> {
  owner: Owner;
  resolve: (value: T) => void;
}

/** A group member, as the coordinator sees it. */
export class Member {
  groupInstanceId: string | null = null;
  sessionTimeout = 0;
  rebalanceTimeout = 0;
  protocolType = '';
  protocols: GroupProtocol[] = [];
  assignment: Buffer = Buffer.alloc(0);
  awaitingJoin: Pending<JoinResult> | null = null;
  awaitingSync: Pending<SyncResult> | null = null;
  sessionTimer: NodeJS.Timeout | null = null;
  constructor(
    readonly memberId: string,
    readonly clientId: string,
    readonly clientHost: string,
  ) {}

  metadataFor(protocol: string): Buffer {
    return this.protocols.find((p) => p.name === protocol)?.metadata ?? Buffer.alloc(0);
  }
}

/** A consumer group: membership state machine plus committed offsets. */
export class Group {
  state: GroupState = 'Empty';
  generationId = 0;
  protocolType: string | null = null;
  protocolName: string | null = null;
  leaderId: string | null = null;
  readonly members = new Map<string, Member>();
  /** Member ids handed out with MEMBER_ID_REQUIRED, awaiting their second JoinGroup. */
  readonly pendingMembers = new Map<string, NodeJS.Timeout>();
  rebalanceTimer: NodeJS.Timeout | null = null;
  /** JoinGroup may not complete before this time (initial rebalance delay). */
  joinNotBefore = 0;
  /** topic -> partition -> committed offset. */
  readonly offsets = new Map<string, Map<number, CommittedOffset>>();
  constructor(readonly id: string) {}
}

/** Settings of the coordinator. */
export interface CoordinatorOptions {
  /** Smallest accepted session timeout (Kafka's group.min.session.timeout.ms). */
  minSessionTimeout: number;
  /** Largest accepted session timeout (group.max.session.timeout.ms). */
  maxSessionTimeout: number;
  /** Delay before the first rebalance of an empty group completes (group.initial.rebalance.delay.ms). */
  initialRebalanceDelay: number;
}

/** JoinGroup input. */
export interface JoinRequest {
  groupId: string;
  memberId: string;
  groupInstanceId: string | null;
  clientId: string;
  clientHost: string;
  sessionTimeout: number;
  rebalanceTimeout: number;
  protocolType: string;
  protocols: GroupProtocol[];
  /** JoinGroup v4+: a new member first gets MEMBER_ID_REQUIRED with its id. */
  requireKnownMemberId: boolean;
}

function joinError(errorCode: number, memberId = ''): JoinResult {
  return { errorCode, generationId: -1, protocolName: '', leaderId: '', memberId, members: [] };
}

function sameProtocols(a: GroupProtocol[], b: GroupProtocol[]): boolean {
  return (
    a.length === b.length && a.every((p, i) => p.name === b[i]!.name && p.metadata.equals(b[i]!.metadata))
  );
}

/** The group coordinator: Kafka's join/sync/heartbeat state machine, session and rebalance timeouts. */
export class GroupCoordinator {
  readonly groups = new Map<string, Group>();

  constructor(private readonly options: CoordinatorOptions) {}

  /** Handles JoinGroup; the promise settles when the join phase completes (or at once on error). */
  join(req: JoinRequest, owner: Owner): Promise<JoinResult> {
    if (req.groupId === '') return Promise.resolve(joinError(ErrorCode.INVALID_GROUP_ID, req.memberId));
    if (
      req.sessionTimeout < this.options.minSessionTimeout ||
      req.sessionTimeout > this.options.maxSessionTimeout
    ) {
      return Promise.resolve(joinError(ErrorCode.INVALID_SESSION_TIMEOUT, req.memberId));
    }
    let group = this.groups.get(req.groupId);
    if (group === undefined) {
      if (req.memberId !== '') return Promise.resolve(joinError(ErrorCode.UNKNOWN_MEMBER_ID, req.memberId));
      group = new Group(req.groupId);
      this.groups.set(req.groupId, group);
    }
    if (!this.supportsProtocols(group, req.protocolType, req.protocols)) {
      return Promise.resolve(joinError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, req.memberId));
    }
    const g = group;

    if (req.memberId === '') {
      const memberId = `${req.clientId}-${randomUUID()}`;
      if (req.requireKnownMemberId) {
        const timer = setTimeout(() => {
          g.pendingMembers.delete(memberId);
          this.tryCompleteJoin(g);
        }, req.sessionTimeout);
        timer.unref();
        g.pendingMembers.set(memberId, timer);
        return Promise.resolve(joinError(ErrorCode.MEMBER_ID_REQUIRED, memberId));
      }
      return this.addMemberAndRebalance(g, memberId, req, owner);
    }

    const pending = g.pendingMembers.get(req.memberId);
    if (pending !== undefined) {
      clearTimeout(pending);
      g.pendingMembers.delete(req.memberId);
      return this.addMemberAndRebalance(g, req.memberId, req, owner);
    }
    const member = g.members.get(req.memberId);
    if (member === undefined) return Promise.resolve(joinError(ErrorCode.UNKNOWN_MEMBER_ID, req.memberId));

    if (g.state === 'CompletingRebalance' && sameProtocols(member.protocols, req.protocols)) {
      this.touch(g, member);
      return Promise.resolve(this.joinResultFor(g, member));
    }
    if (
      g.state === 'Stable' &&
      member.memberId !== g.leaderId &&
      sameProtocols(member.protocols, req.protocols)
    ) {
      this.touch(g, member);
      return Promise.resolve(this.joinResultFor(g, member));
    }
    return this.updateMemberAndRebalance(g, member, req, owner);
  }

  /** Handles SyncGroup; followers wait for the leader's assignment. */
  sync(
    groupId: string,
    generationId: number,
    memberId: string,
    assignments: { memberId: string; assignment: Buffer }[],
    owner: Owner,
  ): Promise<SyncResult> {
    const fail = (errorCode: number) => Promise.resolve({ errorCode, assignment: Buffer.alloc(0) });
    if (groupId === '') return fail(ErrorCode.INVALID_GROUP_ID);
    const group = this.groups.get(groupId);
    const member = group?.members.get(memberId);
    if (group === undefined || member === undefined) return fail(ErrorCode.UNKNOWN_MEMBER_ID);
    if (generationId !== group.generationId) return fail(ErrorCode.ILLEGAL_GENERATION);
    switch (group.state) {
      case 'Empty':
        return fail(ErrorCode.UNKNOWN_MEMBER_ID);
      case 'PreparingRebalance':
        return fail(ErrorCode.REBALANCE_IN_PROGRESS);
      case 'Stable':
        this.touch(group, member);
        return Promise.resolve({ errorCode: ErrorCode.NONE, assignment: member.assignment });
      case 'CompletingRebalance': {
        const result = new Promise<SyncResult>((resolve) => {
          member.awaitingSync = { owner, resolve };
        });
        this.touch(group, member);
        if (memberId === group.leaderId) {
          const given = new Map(assignments.map((a) => [a.memberId, a.assignment]));
          for (const m of group.members.values())
            m.assignment = Buffer.from(given.get(m.memberId) ?? Buffer.alloc(0));
          group.state = 'Stable';
          for (const m of group.members.values()) {
            const waiting = m.awaitingSync;
            m.awaitingSync = null;
            waiting?.resolve({ errorCode: ErrorCode.NONE, assignment: m.assignment });
          }
        }
        return result;
      }
    }
  }

  /** Handles Heartbeat; REBALANCE_IN_PROGRESS tells the member to rejoin. */
  heartbeat(groupId: string, generationId: number, memberId: string): number {
    if (groupId === '') return ErrorCode.INVALID_GROUP_ID;
    const group = this.groups.get(groupId);
    const member = group?.members.get(memberId);
    if (group === undefined || member === undefined || group.state === 'Empty')
      return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    this.touch(group, member);
    if (group.state === 'Stable') return ErrorCode.NONE;
    return ErrorCode.REBALANCE_IN_PROGRESS;
  }

  /** Handles LeaveGroup for one member; returns its error code. */
  leave(groupId: string, memberId: string): number {
    if (groupId === '') return ErrorCode.INVALID_GROUP_ID;
    const group = this.groups.get(groupId);
    if (group === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    const pending = group.pendingMembers.get(memberId);
    if (pending !== undefined) {
      clearTimeout(pending);
      group.pendingMembers.delete(memberId);
      this.tryCompleteJoin(group);
      return ErrorCode.NONE;
    }
    const member = group.members.get(memberId);
    if (member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    this.removeMember(group, member);
    return ErrorCode.NONE;
  }

  /** Checks an OffsetCommit against the group's generation and membership; NONE means it may be stored. */
  checkCommit(groupId: string, generationId: number, memberId: string): number {
    if (groupId === '') return ErrorCode.INVALID_GROUP_ID;
    const group = this.groups.get(groupId);
    if (group === undefined) return generationId < 0 ? ErrorCode.NONE : ErrorCode.ILLEGAL_GENERATION;
    if (generationId < 0 && group.state === 'Empty') return ErrorCode.NONE;
    if (group.state === 'CompletingRebalance') return ErrorCode.REBALANCE_IN_PROGRESS;
    const member = group.members.get(memberId);
    if (member === undefined) return ErrorCode.UNKNOWN_MEMBER_ID;
    if (generationId !== group.generationId) return ErrorCode.ILLEGAL_GENERATION;
    this.touch(group, member);
    return ErrorCode.NONE;
  }

  /** Stores a committed offset (after {@link checkCommit} said NONE). */
  storeOffset(groupId: string, topic: string, partition: number, value: CommittedOffset): void {
    let group = this.groups.get(groupId);
    if (group === undefined) {
      group = new Group(groupId);
      this.groups.set(groupId, group);
    }
    let byTopic = group.offsets.get(topic);
    if (byTopic === undefined) {
      byTopic = new Map();
      group.offsets.set(topic, byTopic);
    }
    byTopic.set(partition, value);
  }

  /** Drops committed offsets of a deleted topic from every group. */
  forgetTopic(topic: string): void {
    for (const g of this.groups.values()) g.offsets.delete(topic);
  }

  /** Deletes an empty group; returns a Kafka error code. */
  deleteGroup(groupId: string): number {
    const group = this.groups.get(groupId);
    if (group === undefined) return ErrorCode.GROUP_ID_NOT_FOUND;
    if (group.state !== 'Empty' || group.members.size > 0) return ErrorCode.NON_EMPTY_GROUP;
    this.clearTimers(group);
    this.groups.delete(groupId);
    return ErrorCode.NONE;
  }

  /** A connection closed: its parked JoinGroup/SyncGroup responses can never be delivered. */
  dropOwner(owner: Owner): void {
    for (const group of this.groups.values()) {
      for (const m of group.members.values()) {
        if (m.awaitingJoin?.owner === owner) m.awaitingJoin = null;
        if (m.awaitingSync?.owner === owner) m.awaitingSync = null;
      }
    }
  }

  /** After a broker restart: parked responses are gone, every session restarts its timeout. */
  restart(): void {
    for (const group of this.groups.values()) {
      for (const m of group.members.values()) {
        m.awaitingJoin = null;
        m.awaitingSync = null;
        this.touch(group, m);
      }
    }
  }

  /** Clears every timer (broker close). */
  close(): void {
    for (const group of this.groups.values()) this.clearTimers(group);
  }

  private clearTimers(group: Group): void {
    if (group.rebalanceTimer !== null) clearTimeout(group.rebalanceTimer);
    group.rebalanceTimer = null;
    for (const t of group.pendingMembers.values()) clearTimeout(t);
    group.pendingMembers.clear();
    for (const m of group.members.values()) {
      if (m.sessionTimer !== null) clearTimeout(m.sessionTimer);
      m.sessionTimer = null;
    }
  }

  private supportsProtocols(group: Group, protocolType: string, protocols: GroupProtocol[]): boolean {
    if (protocolType === '' || protocols.length === 0) return false;
    if (group.members.size === 0) return true;
    if (group.protocolType !== protocolType) return false;
    const names = new Set(protocols.map((p) => p.name));
    return [...group.members.values()].every((m) => m.protocols.some((p) => names.has(p.name)));
  }

  private addMemberAndRebalance(
    group: Group,
    memberId: string,
    req: JoinRequest,
    owner: Owner,
  ): Promise<JoinResult> {
    const member = new Member(memberId, req.clientId, req.clientHost);
    if (group.members.size === 0) group.protocolType = req.protocolType;
    group.members.set(memberId, member);
    return this.updateMemberAndRebalance(group, member, req, owner);
  }

  private updateMemberAndRebalance(
    group: Group,
    member: Member,
    req: JoinRequest,
    owner: Owner,
  ): Promise<JoinResult> {
    member.groupInstanceId = req.groupInstanceId;
    member.sessionTimeout = req.sessionTimeout;
    member.rebalanceTimeout = req.rebalanceTimeout;
    member.protocolType = req.protocolType;
    member.protocols = req.protocols.map((p) => ({ name: p.name, metadata: Buffer.from(p.metadata) }));
    const result = new Promise<JoinResult>((resolve) => {
      member.awaitingJoin?.resolve(joinError(ErrorCode.UNKNOWN_MEMBER_ID, member.memberId));
      member.awaitingJoin = { owner, resolve };
    });
    this.touch(group, member);
    if (group.state !== 'PreparingRebalance') this.prepareRebalance(group);
    else this.tryCompleteJoin(group);
    return result;
  }

  private prepareRebalance(group: Group): void {
    if (group.state === 'CompletingRebalance') {
      for (const m of group.members.values()) {
        const waiting = m.awaitingSync;
        m.awaitingSync = null;
        waiting?.resolve({ errorCode: ErrorCode.REBALANCE_IN_PROGRESS, assignment: Buffer.alloc(0) });
      }
    }
    const wasEmpty = group.state === 'Empty';
    group.state = 'PreparingRebalance';
    const rebalanceTimeout = Math.max(0, ...[...group.members.values()].map((m) => m.rebalanceTimeout));
    if (group.rebalanceTimer !== null) clearTimeout(group.rebalanceTimer);
    const delay = wasEmpty ? Math.min(this.options.initialRebalanceDelay, rebalanceTimeout) : 0;
    group.joinNotBefore = Date.now() + delay;
    if (delay > 0) {
      group.rebalanceTimer = setTimeout(() => {
        group.rebalanceTimer = setTimeout(() => this.completeJoin(group), rebalanceTimeout - delay);
        group.rebalanceTimer.unref();
        this.tryCompleteJoin(group);
      }, delay);
    } else {
      group.rebalanceTimer = setTimeout(() => this.completeJoin(group), rebalanceTimeout);
    }
    group.rebalanceTimer.unref();
    this.tryCompleteJoin(group);
  }

  private tryCompleteJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance') return;
    if (Date.now() < group.joinNotBefore) return;
    if (group.pendingMembers.size > 0) return;
    for (const m of group.members.values()) if (m.awaitingJoin === null) return;
    this.completeJoin(group);
  }

  /** Ends the join phase: members that did not rejoin are dropped, a new generation starts. */
  private completeJoin(group: Group): void {
    if (group.state !== 'PreparingRebalance') return;
    if (group.rebalanceTimer !== null) clearTimeout(group.rebalanceTimer);
    group.rebalanceTimer = null;
    for (const t of group.pendingMembers.values()) clearTimeout(t);
    group.pendingMembers.clear();
    for (const m of [...group.members.values()]) {
      if (m.awaitingJoin === null) {
        if (m.sessionTimer !== null) clearTimeout(m.sessionTimer);
        group.members.delete(m.memberId);
      }
    }
    group.generationId += 1;
    if (group.members.size === 0) {
      group.state = 'Empty';
      group.protocolName = null;
      group.protocolType = null;
      group.leaderId = null;
      return;
    }
    group.protocolName = this.selectProtocol(group);
    if (group.leaderId === null || !group.members.has(group.leaderId)) {
      group.leaderId = group.members.keys().next().value ?? null;
    }
    group.state = 'CompletingRebalance';
    for (const m of group.members.values()) {
      const waiting = m.awaitingJoin;
      m.awaitingJoin = null;
      m.assignment = Buffer.alloc(0);
      this.touch(group, m);
      waiting?.resolve(this.joinResultFor(group, m));
    }
  }

  private joinResultFor(group: Group, member: Member): JoinResult {
    const protocol = group.protocolName ?? '';
    const isLeader = member.memberId === group.leaderId;
    return {
      errorCode: ErrorCode.NONE,
      generationId: group.generationId,
      protocolName: protocol,
      leaderId: group.leaderId ?? '',
      memberId: member.memberId,
      members: isLeader
        ? [...group.members.values()].map((m) => ({
            memberId: m.memberId,
            groupInstanceId: m.groupInstanceId,
            metadata: m.metadataFor(protocol),
          }))
        : [],
    };
  }

  /** Kafka's vote: each member votes for its most preferred protocol that every member supports. */
  private selectProtocol(group: Group): string {
    const members = [...group.members.values()];
    const candidates = members[0]!.protocols
      .map((p) => p.name)
      .filter((name) => members.every((m) => m.protocols.some((p) => p.name === name)));
    const votes = new Map<string, number>();
    for (const m of members) {
      const vote = m.protocols.find((p) => candidates.includes(p.name))?.name;
      if (vote !== undefined) votes.set(vote, (votes.get(vote) ?? 0) + 1);
    }
    let best = candidates[0] ?? '';
    for (const name of candidates) if ((votes.get(name) ?? 0) > (votes.get(best) ?? 0)) best = name;
    return best;
  }

  private removeMember(group: Group, member: Member): void {
    if (member.sessionTimer !== null) clearTimeout(member.sessionTimer);
    member.sessionTimer = null;
    member.awaitingJoin?.resolve(joinError(ErrorCode.UNKNOWN_MEMBER_ID, member.memberId));
    member.awaitingSync?.resolve({ errorCode: ErrorCode.UNKNOWN_MEMBER_ID, assignment: Buffer.alloc(0) });
    member.awaitingJoin = null;
    member.awaitingSync = null;
    group.members.delete(member.memberId);
    if (group.leaderId === member.memberId) group.leaderId = null;
    if (group.state === 'Stable' || group.state === 'CompletingRebalance') this.prepareRebalance(group);
    else this.tryCompleteJoin(group);
  }

  /** Restarts a member's session timeout (any heartbeat, join, sync or commit counts). */
  private touch(group: Group, member: Member): void {
    if (member.sessionTimer !== null) clearTimeout(member.sessionTimer);
    member.sessionTimer = setTimeout(() => {
      member.sessionTimer = null;
      if (group.members.get(member.memberId) !== member) return;
      // A member parked in JoinGroup or SyncGroup is alive by definition.
      if (member.awaitingJoin !== null || member.awaitingSync !== null) {
        this.touch(group, member);
        return;
      }
      this.removeMember(group, member);
    }, member.sessionTimeout);
    member.sessionTimer.unref();
  }
}
