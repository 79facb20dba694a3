import { readFileSync } from 'node:fs'
import {
  type Dockerfile,
  DockerfileParser,
  type Env,
  type From,
  type Instruction,
  type JSONInstruction,
} from 'dockerfile-ast'

/** The repository's Dockerfile, parsed. */
export function readDockerfile(): Dockerfile {
  return DockerfileParser.parse(readFileSync(new URL('../Dockerfile', import.meta.url), 'utf8'))
}

export interface Stage {
  from: From
  name: string | undefined
  instructions: Instruction[]
}

export function stagesOf(dockerfile: Dockerfile): Stage[] {
  const stages: Stage[] = []
  for (const instruction of dockerfile.getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const from = instruction as From
      stages.push({ from, name: from.getBuildStage() ?? undefined, instructions: [] })
    } else {
      stages.at(-1)?.instructions.push(instruction)
    }
  }
  return stages
}

export const ofKind = <T extends Instruction>(stage: Stage, keyword: string) =>
  stage.instructions.filter((i) => i.getKeyword() === keyword) as T[]

/** A RUN's shell words with ARG/ENV values substituted, split into `&&`/`;`-separated commands. */
export function commandsOf(run: Instruction): string[][] {
  const words = run
    .getExpandedArguments()
    .flatMap((a) => a.getValue().split(/\s+/))
    .filter((w) => w.length > 0)
  const commands: string[][] = [[]]
  for (const word of words) {
    if (word === '&&' || word === ';' || word === '||') {
      commands.push([])
    } else if (word.endsWith(';')) {
      commands.at(-1)?.push(word.slice(0, -1))
      commands.push([])
    } else {
      commands.at(-1)?.push(word)
    }
  }
  return commands.filter((c) => c.length > 0)
}

export const jsonArgs = (instruction: Instruction) =>
  (instruction as JSONInstruction).getJSONStrings().map((s) => s.getJSONValue())

export const envOf = (stage: Stage) =>
  new Map(
    ofKind<Env>(stage, 'ENV').flatMap((env) =>
      env.getProperties().map((p) => [p.getName(), p.getValue()] as const),
    ),
  )
