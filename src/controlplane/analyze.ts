// `remora analyze DIR`: validates a directory of mesh manifests without starting anything and explains each problem.

import { stat } from 'node:fs/promises';
import { checkMesh, PROBLEM_NAMES, type Problem, type ProblemCode } from './mesh_checks.js';
import { buildSnapshot } from './model/build.js';
import type { MeshSnapshot } from './model/snapshot.js';
import { ManifestDir } from './sources/manifest_dir.js';

export { PROBLEM_NAMES, type Problem, type ProblemCode } from './mesh_checks.js';

export interface Analysis {
  readonly snapshot: MeshSnapshot;
  /** Problems of the manifests themselves first (in file order), then cross-object problems. */
  readonly problems: readonly Problem[];
}

/** Reads every manifest under `dir` as the files source would, builds the snapshot, and checks it. */
export async function analyzeDir(dir: string): Promise<Analysis> {
  const st = await stat(dir).catch(() => undefined);
  if (st === undefined || !st.isDirectory()) {
    throw new Error(`${dir}: ${st === undefined ? 'no such directory' : 'not a directory'}`);
  }
  const files = new ManifestDir(dir, 'files');
  await files.scan();
  const { objects, problems: fileProblems } = files.current();
  const snapshot = buildSnapshot(objects);
  const problems: Problem[] = fileProblems.map((p) => ({ code: p.code as ProblemCode, message: p.message }));
  problems.push(...checkMesh(snapshot, objects));
  return { snapshot, problems };
}

/** `file: Kind ns/name: path: message [RA0202 unknown-subset]`. */
export function formatProblem(p: Problem): string {
  return `${p.message} [${p.code} ${PROBLEM_NAMES[p.code]}]`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** One line: `examples/mesh: clean: 2 services, 3 endpoints, 1 VirtualService, ...`. */
export function summarize(dir: string, s: MeshSnapshot): string {
  let endpoints = 0;
  for (const svc of s.services) endpoints += s.endpoints(svc.hostname).length;
  return (
    `${dir}: clean: ${count(s.services.length, 'service')}, ${count(endpoints, 'endpoint')}, ` +
    `${count(s.workloads.length, 'workload')}, ${count(s.virtualServices.length, 'VirtualService')}, ` +
    `${count(s.destinationRules.length, 'DestinationRule')}, ${count(s.sidecars.length, 'Sidecar')}`
  );
}

export interface Output {
  write(text: string): unknown;
}

/** Exit code 0 with a one-line summary when clean; 1 with every problem (one per line) otherwise. */
export async function runAnalyze(
  dir: string,
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
  let analysis: Analysis;
  try {
    analysis = await analyzeDir(dir);
  } catch (e) {
    err.write(`${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
  const { problems, snapshot } = analysis;
  if (problems.length === 0) {
    out.write(`${summarize(dir, snapshot)}\n`);
    return 0;
  }
  for (const p of problems) err.write(`${formatProblem(p)}\n`);
  err.write(`${dir}: ${count(problems.length, 'problem')}\n`);
  return 1;
}
