import type { Reporter } from 'vitest/reporters';

interface TaskLike {
  type: string;
  mode?: string;
  result?: { state?: string };
  tasks?: TaskLike[];
}

/** Adds one plain closing line, `tests: N passed, N failed, N skipped`, that any CI can read. */
export default class SummaryReporter implements Reporter {
  onFinished(files: TaskLike[] = [], errors: unknown[] = []): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    const visit = (task: TaskLike): void => {
      if (task.type === 'test') {
        if (task.mode === 'skip' || task.mode === 'todo') counts.skipped++;
        else if (task.result?.state === 'pass') counts.passed++;
        else if (task.result?.state === 'fail') counts.failed++;
        else counts.skipped++;
      }
      for (const child of task.tasks ?? []) visit(child);
    };
    for (const file of files) {
      visit(file);
      // A file that failed to load has no tests but did fail.
      if (file.result?.state === 'fail' && !(file.tasks ?? []).length) counts.failed++;
    }
    counts.failed += errors.length;
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
  }
}
