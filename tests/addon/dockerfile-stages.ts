/** A small Dockerfile reader for the add-on tests: instructions with continuations joined, grouped by stage. */
import { readFileSync } from 'node:fs';

export interface Instruction {
  keyword: string;
  args: string;
}

export interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

export function readInstructions(path: string): Instruction[] {
  const joined = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
    });
}

export function readStages(path: string): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of readInstructions(path)) {
    if (instruction.keyword === 'FROM') {
      const [from, , name] = instruction.args.split(' ');
      stages.push({ from: from!, name, instructions: [] });
    } else stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

/** `COPY src... dest` from the build context (not --from=stage): the sources. */
export function contextCopies(stage: Stage): { sources: string[]; dest: string }[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from='))
    .map((i) => {
      const parts = i.args.split(/\s+/);
      return { sources: parts.slice(0, -1), dest: parts.at(-1)! };
    });
}
