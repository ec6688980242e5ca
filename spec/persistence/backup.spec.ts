// Backup and restore at the storage level (N6: restore the cluster from a backup; O2: a member's data
// deleted by mistake). A backup of a live member is consistent; a restore validates before use and never
// leaves a damaged or half-copied member directory behind.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { expect } from 'chai';
import {
  backupMember,
  CONSENSUS_MODULE_SERVICE_ID,
  type MemberStore,
  openMemberStore,
  restoreMember,
} from '../../persistence/index.ts';
import { cleanup, entries, plain, rejectsWith, tempDir } from './helpers.ts';

describe('persistence: backup and restore', function () {
  this.timeout(20_000);
  let root: string;
  let source: MemberStore;

  beforeEach(async () => {
    root = tempDir('backup');
    source = await openMemberStore(join(root, 'member'));
    await source.nodeState.save({ currentTerm: 3, candidateTermId: 3, votedFor: 1 });
    await source.recordingLog.appendTerm(3, 0, 0);
    await source.log.append(entries(1, 200, 3, 100));
    const cm = await source.snapshots.save(
      { serviceId: CONSENSUS_MODULE_SERVICE_ID, logIndex: 150, term: 3, timestamp: 0 },
      Buffer.from('consensus module state'),
    );
    await source.recordingLog.appendSnapshotSet({
      term: 3,
      logIndex: 150,
      timestamp: 0,
      snapshots: [{ serviceId: CONSENSUS_MODULE_SERVICE_ID, snapshotId: cm.snapshotId }],
    });
  });
  afterEach(async () => {
    await source.close();
    cleanup(root);
  });

  it('N6/O2: backs up a live member while appends go on, and restores it to an identical, validated member', async () => {
    const backupDir = join(root, 'backup');
    // Appends keep coming while the copy is taken.
    const during = source.log.append(entries(201, 260, 3, 100));
    const manifest = await backupMember(source, backupDir);
    await during;
    expect(manifest.lastIndex).to.be.at.least(200);
    expect(manifest).to.include({ firstIndex: 1, lastTerm: 3, snapshotIndex: 150, currentTerm: 3 });

    const restoredDir = join(root, 'restored');
    const report = await restoreMember(backupDir, restoredDir);
    expect(report.scan.ok).to.equal(true);
    expect(report.scan.entriesChecked).to.equal(manifest.lastIndex);
    const restored = await openMemberStore(restoredDir);
    try {
      expect(restored.log.lastIndex).to.equal(manifest.lastIndex);
      expect(restored.log.read(1).map(plain)).to.deep.equal(
        source.log.read(1, manifest.lastIndex).map(plain),
      );
      expect(restored.nodeState.load()).to.deep.equal(source.nodeState.load());
      const plan = restored.recoveryPlan();
      expect(plan.snapshotSet?.logIndex).to.equal(150);
      expect(restored.snapshots.load(plan.snapshots[0].entry.snapshotId).toString()).to.equal(
        'consensus module state',
      );
      // The restored member is writable and keeps going from where the backup ended.
      await restored.log.append(entries(manifest.lastIndex + 1, manifest.lastIndex + 5, 4, 10));
    } finally {
      await restored.close();
    }
  });

  it('N6: refuses a backup whose data file was damaged, and leaves no member directory behind', async () => {
    const backupDir = join(root, 'backup');
    await backupMember(source, backupDir);
    const data = readFileSync(join(backupDir, 'data.mdb'));
    data[data.length >> 1] ^= 0xff;
    writeFileSync(join(backupDir, 'data.mdb'), data);
    const restoredDir = join(root, 'restored');
    await rejectsWith(restoreMember(backupDir, restoredDir), 'INVALID_BACKUP', /does not match its manifest/);
    expect(existsSync(restoredDir)).to.equal(false);
  });

  it('N6: validates the copy itself, so a damaged entry is refused even when the manifest was rewritten to match', async () => {
    const backupDir = join(root, 'backup');
    const manifest = await backupMember(source, backupDir);
    const path = join(backupDir, 'data.mdb');
    const data = readFileSync(path);
    const at = data.indexOf(Buffer.from(entries(77, 77, 3, 100)[0].payload));
    expect(at).to.be.greaterThan(0);
    data[at + 3] ^= 0x01;
    writeFileSync(path, data);
    writeFileSync(
      join(backupDir, 'chorus-backup.json'),
      JSON.stringify({ ...manifest, dataCrc32c: crc32c(data) >>> 0, dataBytes: data.length }),
    );
    const restoredDir = join(root, 'restored');
    await rejectsWith(
      restoreMember(backupDir, restoredDir),
      'INVALID_BACKUP',
      /fails validation: .*log entry 77/,
    );
    expect(existsSync(restoredDir)).to.equal(false);
  });

  it('refuses to restore over a directory that holds data, or to back up into one', async () => {
    const backupDir = join(root, 'backup');
    await backupMember(source, backupDir);
    await rejectsWith(backupMember(source, backupDir), 'TARGET_NOT_EMPTY', /is not empty/);
    const occupied = join(root, 'occupied');
    mkdirSync(occupied);
    writeFileSync(join(occupied, 'data.mdb'), 'precious');
    await rejectsWith(restoreMember(backupDir, occupied), 'TARGET_NOT_EMPTY', /already holds data/);
    expect(readFileSync(join(occupied, 'data.mdb'), 'utf8')).to.equal('precious');
    await rejectsWith(
      restoreMember(join(root, 'nowhere'), join(root, 'x')),
      'INVALID_BACKUP',
      /not a finished Chorus backup/,
    );
    // An empty existing directory is a fine target.
    const empty = join(root, 'empty');
    mkdirSync(empty);
    expect((await restoreMember(backupDir, empty)).scan.ok).to.equal(true);
  });
});
