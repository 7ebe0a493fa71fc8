/**
 * The authors' script flags (train_search.py, train.py, train_imagenet.py) as hidden aliases:
 * `--learning_rate 0.1` runs as `--lr 0.1` and prints the pcdarts name once. An alias only
 * applies where its pcdarts flag exists on the command, so anything else stays commander's
 * "unknown option" error.
 */
import type { Command } from 'commander';

/** What an authors' flag becomes: its pcdarts tokens (a value follows when the alias takes one), or a note that it is not needed. */
interface Alias {
  /** The pcdarts flag; `value` fixes its value (--unrolled means --order 2). */
  flag?: string;
  value?: string;
  /** The alias takes no value of its own. */
  boolean?: boolean;
  /** Accepted and ignored (with its value, if `takesValue`), with this reason. */
  ignored?: string;
  takesValue?: boolean;
}

export const AUTHOR_FLAG_ALIASES: Readonly<Record<string, Alias>> = {
  '--learning_rate': { flag: '--lr' },
  '--learning_rate_min': { flag: '--lr-min' },
  '--batch_size': { flag: '--batch-size' },
  '--weight_decay': { flag: '--weight-decay' },
  '--init_channels': { flag: '--init-channels' },
  '--arch_learning_rate': { flag: '--arch-lr' },
  '--arch_weight_decay': { flag: '--arch-weight-decay' },
  '--train_portion': { flag: '--train-portion' },
  '--grad_clip': { flag: '--grad-clip' },
  '--set': { flag: '--dataset' },
  '--save': { flag: '--out' },
  '--arch': { flag: '--genotype' },
  '--model_path': { flag: '--checkpoint' },
  '--auxiliary_weight': { flag: '--auxiliary-weight' },
  '--cutout_length': { flag: '--cutout-length' },
  '--drop_path_prob': { flag: '--drop-path-prob' },
  '--label_smooth': { flag: '--label-smoothing' },
  '--lr_scheduler': { flag: '--lr-schedule' },
  '--tmp_data_dir': { flag: '--data' },
  '--unrolled': { flag: '--order', value: '2', boolean: true },
  '--report_freq': { ignored: 'pcdarts shows every step on its progress line and logs every step to RUN_DIR/log.jsonl', takesValue: true },
  '--gpu': { ignored: 'pcdarts runs on the CPU cores (--threads N)', takesValue: true },
  '--note': { ignored: 'name the run directory with --out instead', takesValue: true },
};

/** Whether `command` has an option with this long flag. */
function hasFlag(command: Command, flag: string): boolean {
  return command.options.some((option) => option.long === flag);
}

/**
 * Rewrites the authors' flags of `args` (what follows the command name) into pcdarts flags
 * where `command` has them; `note` receives one line per alias used.
 */
export function rewriteAuthorFlags(command: Command, args: readonly string[], note: (line: string) => void): string[] {
  const out: string[] = [];
  const noted = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const alias = Object.hasOwn(AUTHOR_FLAG_ALIASES, name) ? AUTHOR_FLAG_ALIASES[name] : undefined;
    if (alias === undefined || hasFlag(command, name)) {
      out.push(arg);
      continue;
    }
    if (alias.ignored !== undefined) {
      if (!noted.has(name)) note(`${name} is not needed: ${alias.ignored}; ignored`);
      noted.add(name);
      if (alias.takesValue && eq < 0 && i + 1 < args.length && !args[i + 1]!.startsWith('--')) i++;
      continue;
    }
    if (alias.flag === undefined || !hasFlag(command, alias.flag)) {
      out.push(arg);
      continue;
    }
    const replacement = alias.value !== undefined ? `${alias.flag} ${alias.value}` : alias.flag;
    if (!noted.has(name)) note(`${name} is ${replacement} in pcdarts (the authors' name works too)`);
    noted.add(name);
    if (alias.value !== undefined) out.push(alias.flag, alias.value);
    else out.push(eq > 0 ? `${alias.flag}=${arg.slice(eq + 1)}` : alias.flag);
  }
  return out;
}
