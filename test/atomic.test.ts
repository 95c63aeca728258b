import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeFileAtomic, writeFolderAtomic } from '../orchestrator/util/atomic';
import { InputError } from '../orchestrator/util/errors';

const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'dyncim-atomic-'));
afterAll(() => fs.rmSync(folder, { recursive: true, force: true }));

const writeReport = (dir: string) => fs.writeFileSync(path.join(dir, 'report.json'), '{}');

describe('writeFolderAtomic', () => {
  it('replaces an earlier output that holds the marker', async () => {
    const target = path.join(folder, 'run');
    await writeFolderAtomic(target, writeReport, { marker: 'report.json' });
    await writeFolderAtomic(
      target,
      (dir) => {
        writeReport(dir);
        fs.writeFileSync(path.join(dir, 'second.txt'), '2');
      },
      { marker: 'report.json' },
    );
    expect(fs.readdirSync(target).sort()).toEqual(['report.json', 'second.txt']);
  });

  it('refuses a folder of other data and a file, and leaves both alone', async () => {
    const data = path.join(folder, 'recordings');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, '0_a_1.wav'), 'precious');
    const file = path.join(folder, 'picture.png');
    fs.writeFileSync(file, 'png');

    const intoData = writeFolderAtomic(data, writeReport, { marker: 'report.json' });
    await expect(intoData).rejects.toThrow(InputError);
    await expect(writeFolderAtomic(data, writeReport, { marker: 'report.json' })).rejects.toThrow(
      /recordings: exists and is not an earlier output \(it has no report\.json\)/,
    );
    await expect(writeFolderAtomic(file, writeReport)).rejects.toThrow(/picture\.png: exists/);

    expect(fs.readFileSync(path.join(data, '0_a_1.wav'), 'utf8')).toBe('precious');
    expect(fs.readFileSync(file, 'utf8')).toBe('png');
  });

  it('refuses the working folder and its parents', async () => {
    await expect(writeFolderAtomic('.', writeReport)).rejects.toThrow(/working folder/);
    await expect(writeFolderAtomic('..', writeReport)).rejects.toThrow(/working folder/);
  });

  it('removes what it wrote when filling fails, and stale folders of dead processes', async () => {
    const target = path.join(folder, 'failing');
    // pid 2^22 + 1 is above Linux's largest pid, so no process owns this leftover
    const stale = path.join(folder, `.failing.tmp-${2 ** 22 + 1}.1.abc`);
    fs.mkdirSync(stale);

    const attempt = writeFolderAtomic(target, () => {
      throw new Error('fill failed');
    });
    await expect(attempt).rejects.toThrow('fill failed');

    expect(fs.existsSync(target)).toBe(false);
    expect(fs.readdirSync(folder).filter((name) => name.startsWith('.failing'))).toEqual([]);
  });
});

describe('writeFileAtomic', () => {
  it('writes whole files and keeps the old one when the write fails', () => {
    const target = path.join(folder, 'notes.txt');
    writeFileAtomic(target, 'first');
    writeFileAtomic(target, 'second');
    expect(fs.readFileSync(target, 'utf8')).toBe('second');
    expect(() => writeFileAtomic(path.join(target, 'below-a-file'), 'x')).toThrow();
    expect(fs.readFileSync(target, 'utf8')).toBe('second');
  });
});
