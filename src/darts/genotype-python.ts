/**
 * The authors' Python text form of a genotype,
 * `Genotype(normal=[('sep_conv_3x3', 1), ...], normal_concat=range(2, 6), ...)`: formatting,
 * and a parser (a tokenizer and a recursive-descent reader; nothing is evaluated).
 */
import { type Genotype, genotypeLabelFor, validateGenotype } from './genotype.js';
import { isPrimitive, PRIMITIVES, type Primitive } from './primitives.js';

// ---------------------------------------------------------------------------------------
// Python text form: Genotype(normal=[('sep_conv_3x3', 1), ...], normal_concat=range(2, 6), ...)

/** The authors' text form; `parsePythonGenotype` reads it back. Contiguous concat -> range(a, b). */
export function formatGenotypePython(genotype: Genotype): string {
  const pairs = (list: [Primitive, number][]): string =>
    `[${list.map(([op, input]) => `('${op}', ${input})`).join(', ')}]`;
  const concat = (list: number[]): string => {
    const contiguous = list.length > 0 && list.every((v, k) => v === list[0]! + k);
    return contiguous ? `range(${list[0]}, ${list[0]! + list.length})` : `[${list.join(', ')}]`;
  };
  return (
    `Genotype(normal=${pairs(genotype.normal)}, normal_concat=${concat(genotype.normal_concat)}, ` +
    `reduce=${pairs(genotype.reduce)}, reduce_concat=${concat(genotype.reduce_concat)})`
  );
}

type TokenKind = 'name' | 'string' | 'int' | 'punct' | 'end';
interface Token {
  kind: TokenKind;
  text: string;
  /** Offset into the source text. */
  offset: number;
}

const PUNCTUATION = '()[],=;';

/** A parse error located by line and column (both 1-based). */
function syntaxError(text: string, offset: number, source: string | undefined, message: string): Error {
  let line = 1;
  let column = 1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  return new Error(`${genotypeLabelFor(source)}: line ${line}, column ${column}: ${message}`);
}

function tokenize(text: string, source: string | undefined): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (PUNCTUATION.includes(c)) {
      tokens.push({ kind: 'punct', text: c, offset: i });
      i++;
    } else if (c === "'" || c === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== c && text[i] !== '\n') {
        if (text[i] === '\\') throw syntaxError(text, i, source, 'escape sequences are not supported in operation names');
        i++;
      }
      if (text[i] !== c) throw syntaxError(text, start, source, `unterminated string starting with ${c}`);
      tokens.push({ kind: 'string', text: text.slice(start + 1, i), offset: start });
      i++;
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const match = /^-?[0-9]+/.exec(text.slice(i))!;
      tokens.push({ kind: 'int', text: match[0], offset: i });
      i += match[0].length;
      if (/[A-Za-z_.]/.test(text[i] ?? '')) {
        throw syntaxError(text, i, source, `unexpected character '${text[i]}' after a number (only integers are allowed)`);
      }
    } else if (/[A-Za-z_]/.test(c)) {
      const match = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*/.exec(text.slice(i))!;
      tokens.push({ kind: 'name', text: match[0], offset: i });
      i += match[0].length;
    } else {
      throw syntaxError(text, i, source, `unexpected character '${c}'`);
    }
  }
  tokens.push({ kind: 'end', text: '', offset: text.length });
  return tokens;
}

const GENOTYPE_FIELDS = ['normal', 'normal_concat', 'reduce', 'reduce_concat'] as const;
type GenotypeField = (typeof GENOTYPE_FIELDS)[number];

/** Recursive-descent reader over the tokens of one `Genotype(...)` expression. */
class PythonGenotypeReader {
  private position = 0;

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
    private readonly source: string | undefined,
  ) {}

  private peek(): Token {
    return this.tokens[this.position]!;
  }

  private next(): Token {
    const token = this.tokens[this.position]!;
    if (token.kind !== 'end') this.position++;
    return token;
  }

  private fail(token: Token, message: string): Error {
    return syntaxError(this.text, token.offset, this.source, message);
  }

  private static show(token: Token): string {
    if (token.kind === 'end') return 'end of input';
    if (token.kind === 'string') return `string '${token.text}'`;
    return `'${token.text}'`;
  }

  private isPunct(text: string): boolean {
    const token = this.peek();
    return token.kind === 'punct' && token.text === text;
  }

  private expectPunct(text: string, context: string): Token {
    const token = this.next();
    if (token.kind !== 'punct' || token.text !== text) {
      throw this.fail(token, `expected '${text}' ${context}, found ${PythonGenotypeReader.show(token)}`);
    }
    return token;
  }

  private expectInt(context: string): number {
    const token = this.next();
    if (token.kind !== 'int') throw this.fail(token, `expected an integer ${context}, found ${PythonGenotypeReader.show(token)}`);
    return Number(token.text);
  }

  /** Genotype = [NAME '='] 'Genotype' '(' arguments ')' [';'] end */
  read(): Genotype {
    if (this.peek().kind === 'name' && this.tokens[this.position + 1]?.text === '=') {
      this.position += 2; // `PC_DARTS_cifar = Genotype(...)`, as in the authors' genotypes.py
    }
    const head = this.next();
    if (head.kind !== 'name' || (head.text !== 'Genotype' && !head.text.endsWith('.Genotype'))) {
      throw this.fail(head, `expected 'Genotype(', found ${PythonGenotypeReader.show(head)}`);
    }
    const open = this.expectPunct('(', "after 'Genotype'");
    const fields = new Map<GenotypeField, unknown>();
    let positional = 0;
    while (!this.isPunct(')')) {
      const start = this.peek();
      if (start.kind === 'end') throw this.unclosed(open, "')'", "'Genotype('");
      let field: GenotypeField;
      if (start.kind === 'name' && this.tokens[this.position + 1]?.text === '=') {
        if (!(GENOTYPE_FIELDS as readonly string[]).includes(start.text)) {
          throw this.fail(start, `unknown field '${start.text}' (expected ${GENOTYPE_FIELDS.join(', ')})`);
        }
        field = start.text as GenotypeField;
        this.position += 2;
      } else {
        if (fields.size > positional) throw this.fail(start, 'positional argument after keyword arguments');
        if (positional >= GENOTYPE_FIELDS.length) {
          throw this.fail(start, `too many arguments (Genotype has ${GENOTYPE_FIELDS.length} fields)`);
        }
        field = GENOTYPE_FIELDS[positional]!;
        positional++;
      }
      if (fields.has(field)) throw this.fail(start, `field '${field}' given twice`);
      fields.set(field, field.endsWith('_concat') ? this.readConcat(field) : this.readPairs(field));
      if (this.peek().kind === 'end') throw this.unclosed(open, "')'", "'Genotype('");
      if (!this.isPunct(')')) this.expectPunct(',', `or ')' after the value of '${field}'`);
    }
    const close = this.next();
    if (this.isPunct(';')) this.next();
    const end = this.peek();
    if (end.kind !== 'end') throw this.fail(end, `unexpected ${PythonGenotypeReader.show(end)} after the closing ')'`);
    const missing = GENOTYPE_FIELDS.filter((f) => !fields.has(f));
    if (missing.length > 0) throw this.fail(close, `missing field${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
    return Object.fromEntries(GENOTYPE_FIELDS.map((f) => [f, fields.get(f)])) as unknown as Genotype;
  }

  /** Error at the end of the input: `closing` never came for the bracket `opener`. */
  private unclosed(opener: Token, closing: string, what: string): Error {
    const before = this.text.slice(0, opener.offset);
    const line = before.split('\n').length;
    const column = opener.offset - before.lastIndexOf('\n');
    return this.fail(this.peek(), `missing ${closing} closing ${what} opened at line ${line}, column ${column}`);
  }

  /** pairs = '[' [pair (',' pair)* [',']] ']' ; pair = ('(' | '[') STRING ',' INT [','] (')' | ']') */
  private readPairs(field: string): [Primitive, number][] {
    const listOpen = this.expectPunct('[', `to start the list of '${field}'`);
    const pairs: [Primitive, number][] = [];
    while (!this.isPunct(']')) {
      if (this.peek().kind === 'end') throw this.unclosed(listOpen, "']'", `the list of '${field}'`);
      const open = this.next();
      if (open.kind !== 'punct' || (open.text !== '(' && open.text !== '[')) {
        const found = PythonGenotypeReader.show(open);
        throw this.fail(open, `expected an ('operation', input) pair in '${field}', found ${found}`);
      }
      const closing = open.text === '(' ? ')' : ']';
      const name = this.next();
      if (name.kind !== 'string') {
        throw this.fail(name, `expected a quoted operation name, found ${PythonGenotypeReader.show(name)}`);
      }
      if (!isPrimitive(name.text)) {
        throw this.fail(name, `unknown operation '${name.text}' (known: ${PRIMITIVES.join(', ')})`);
      }
      this.expectPunct(',', `after the operation name '${name.text}'`);
      const input = this.expectInt(`(the input index) after '${name.text}',`);
      if (this.isPunct(',')) this.next();
      this.expectPunct(closing, `closing the pair ('${name.text}', ${input})`);
      pairs.push([name.text, input]);
      if (this.peek().kind === 'end') throw this.unclosed(listOpen, "']'", `the list of '${field}'`);
      if (!this.isPunct(']')) this.expectPunct(',', `or ']' after a pair in '${field}'`);
    }
    this.next();
    return pairs;
  }

  /** concat = 'range' '(' INT ',' INT ')' | '[' ints ']' | '(' ints ')' */
  private readConcat(field: string): number[] {
    const token = this.next();
    if (token.kind === 'name' && token.text === 'range') {
      this.expectPunct('(', "after 'range'");
      const from = this.expectInt(`as the start of the range of '${field}'`);
      this.expectPunct(',', `after the start of the range of '${field}'`);
      const to = this.expectInt(`as the end of the range of '${field}'`);
      this.expectPunct(')', `closing the range of '${field}' (range takes a start and an end)`);
      if (to <= from) throw this.fail(token, `range(${from}, ${to}) of '${field}' is empty`);
      return Array.from({ length: to - from }, (_, k) => from + k);
    }
    if (token.kind === 'punct' && (token.text === '[' || token.text === '(')) {
      const closing = token.text === '[' ? ']' : ')';
      const values: number[] = [];
      while (!this.isPunct(closing)) {
        if (this.peek().kind === 'end') throw this.unclosed(token, `'${closing}'`, `the list of '${field}'`);
        values.push(this.expectInt(`in '${field}'`));
        if (!this.isPunct(closing)) this.expectPunct(',', `or '${closing}' in '${field}'`);
      }
      this.next();
      return values;
    }
    const found = PythonGenotypeReader.show(token);
    throw this.fail(token, `expected range(a, b) or a list of integers for '${field}', found ${found}`);
  }
}

/**
 * Parses the authors' Python text form (optionally `NAME = Genotype(...)`, comments allowed)
 * with a small tokenizer and recursive-descent reader; nothing is evaluated. The result is
 * validated. Errors are one line with the line and column of the problem.
 */
export function parsePythonGenotype(text: string, source?: string): Genotype {
  const genotype = new PythonGenotypeReader(text, tokenize(text, source), source).read();
  return validateGenotype(genotype, source === undefined ? {} : { source });
}
