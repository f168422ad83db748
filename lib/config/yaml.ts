/**
 * YAML text → one plain value (objects, arrays, strings, numbers, booleans, null) and where each key and value
 * is written, or a `ConfigError` with file:line:column. Pure; part of the lazily loaded parser.
 *
 * The yaml library lexes, parses and composes; the rest is done here rather than with its `toJS` and `getIn`:
 * - Limits, checked as the text is parsed: a config nested deeper than `MAX_DEPTH`, or with a longer run of
 *   indicators, is refused before the library's recursive code (lexer, composer) can run out of stack.
 *   Aliases may stand for at most `MAX_ALIASED_VALUES` values in all (a "billion laughs" file is refused
 *   instead of expanding); an alias with no anchor before it, or inside the value it names, is an error.
 * - Linear time: duplicate keys are found with a set per map (the library's `uniqueKeys` scans every earlier
 *   key for each key), and positions come from the tree built here (`getIn` scans a map for each lookup).
 * - Values only a tag can give (`!!binary`, `!!timestamp`, `!!set`, `!!omap`, `!!pairs`) become a symbol
 *   describing them, so the schema refuses them wherever they are and the message names what was written.
 * - Keys are strings as written (`1.50:` is "1.50"); a list, a map or a tagged value as a key is an error.
 */
import {
  Composer,
  CST,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  type Node,
  type Pair,
  Parser,
} from "yaml";
import { ConfigError } from "../errors.ts";
import { MAX_CONFIG_BYTES } from "./decode.ts";

/** Most levels of lists and maps inside each other; moat's own settings need three. */
export const MAX_DEPTH = 64;
/** Most values that aliases (`*name`) may stand for in one file, counting every value inside lists and maps. */
export const MAX_ALIASED_VALUES = 10_000;

/** Where a value is written: offsets into the text. `items` by key (a list's by index) for maps and lists. */
export interface Where {
  /** The key's offset, for a map entry. */
  key?: number;
  /** The value's offset: where it is written here, which for an alias is the alias. */
  at: number;
  /** A scalar's own text, for numbers and booleans passed on as written (an alias's is its anchor's). */
  written?: [number, number];
  items?: Map<string, Where>;
}

export interface YamlValue {
  /** `undefined` for a file with no document (empty, or only comments). */
  value: unknown;
  where: Where;
  /** 1-based line and column of an offset. */
  position(offset: number): { line: number; col: number };
}

/** A field path as shown in messages: `env.A`, `mounts[0].source`. */
export function showPath(path: readonly PropertyKey[]): string {
  return path.map((seg, i) => typeof seg === "number" ? `[${seg}]` : `${i === 0 ? "" : "."}${String(seg)}`)
    .join("");
}

/** The `Where` of `path`, or of the deepest part of it that exists (`found: false` then). */
export function whereOf(root: Where, path: readonly (string | number)[]): { where: Where; found: boolean } {
  let where = root;
  for (const seg of path) {
    const next = where.items?.get(String(seg));
    if (!next) return { where, found: false };
    where = next;
  }
  return { where, found: true };
}

const INDICATORS = new Set(["seq-item-ind", "explicit-key-ind", "map-value-ind", "tag", "anchor"]);
const COLLECTIONS = new Set(["block-map", "block-seq", "flow-collection"]);
const TAG = "tag:yaml.org,2002:";
/** Collections with these tags are not plain lists or maps. */
const UNPLAIN_COLLECTIONS: Record<string, string> = {
  [`${TAG}set`]: "a set (!!set)",
  [`${TAG}omap`]: "an ordered map (!!omap)",
  [`${TAG}pairs`]: "a list of pairs (!!pairs)",
};

/** Read the one YAML document in `text`. `file` is the path shown in errors. */
export function readYaml(text: string, file: string): YamlValue {
  const lineCounter = new LineCounter();
  const position = (offset: number) => {
    const p = lineCounter.linePos(offset);
    return { line: p.line, col: p.col };
  };
  const fail = (offset: number, path: string, problem: string, hint?: string): never => {
    const { line, col } = position(offset);
    throw new ConfigError(file, line, col, path, problem, hint);
  };
  if (text.length > MAX_CONFIG_BYTES) {
    lineCounter.addNewLine(0);
    for (let i = text.indexOf("\n"); i !== -1 && i < MAX_CONFIG_BYTES; i = text.indexOf("\n", i + 1)) {
      lineCounter.addNewLine(i + 1);
    }
    fail(
      MAX_CONFIG_BYTES,
      "",
      `the file is larger than 1 MiB (${MAX_CONFIG_BYTES} bytes), the most moat reads; the limit is passed here`,
      `A config holds settings, not data; check its size:  ls -l ${file}`,
    );
  }

  const tokens = parseTokens(text, lineCounter, fail);
  const starts = tokens.flatMap((t, i) => t.type === "document" ? [i] : []);
  const composer = new Composer({ uniqueKeys: false });
  const [doc] = Array.from(composer.compose(tokens.slice(0, starts[1] ?? tokens.length)));
  const firstError = doc?.errors[0];
  if (firstError) {
    const problem = firstError.message.split("\n")[0]!.replace(/ at line \d+, column \d+.*$/, "");
    fail(firstError.pos[0], "", `YAML syntax error: ${problem}`, "Fix the YAML at that position");
  }
  const second = starts[1] === undefined ? undefined : tokens[starts[1]] as CST.Document;
  if (second) {
    const marker = second.start.find((t) => t.type === "doc-start");
    fail(
      marker?.offset ?? second.offset,
      "",
      `a second YAML document starts here; ${baseName(file)} holds one document`,
      marker
        ? `Put all settings in the first document: delete this "---" line and merge or remove what follows it`
        : `Put all settings in the first document: delete the "..." line before this and merge or remove what follows it`,
    );
  }
  const root = doc?.contents ?? null;
  if (root === null) return { value: undefined, where: { at: 0 }, position };
  return { ...toPlain(root, text, fail), position };
}

type Fail = (offset: number, path: string, problem: string, hint?: string) => never;

/**
 * Lex and parse into CST tokens, one lexeme at a time, so the limits stop a hostile file early: the parser's
 * stack holds the collections open around the current lexeme, and the lexer recurses once for each indicator
 * in a run such as `- - - -` or `!a !a !a` (a long run would exhaust the stack, slowly: each level re-yields
 * every lexeme below it).
 */
function parseTokens(text: string, lineCounter: LineCounter, fail: Fail): CST.Token[] {
  const parser = new Parser(lineCounter.addNewLine);
  lineCounter.addNewLine(0); // as Parser.parse does
  const tokens: CST.Token[] = [];
  let run = 0;
  let scalarNext = false;
  for (const lexeme of new Lexer().lex(text)) {
    const offset = parser.offset;
    if (scalarNext) {
      scalarNext = false; // this lexeme is a scalar's text, whatever it looks like
      run = 0;
    } else {
      const type = CST.tokenType(lexeme);
      if (type === "scalar") scalarNext = true;
      if (type && INDICATORS.has(type)) {
        if (++run > MAX_DEPTH) {
          fail(
            offset,
            "",
            `YAML syntax error: more than ${MAX_DEPTH} indicators (-, ?, :, tags, anchors) in a row`,
            "Fix the YAML at that position",
          );
        }
      } else if (type !== "space") run = 0;
    }
    for (const token of parser.next(lexeme)) tokens.push(token);
    if (parser.stack.length > MAX_DEPTH) {
      const open = parser.stack.filter((t) => COLLECTIONS.has(t.type));
      if (open.length > MAX_DEPTH) {
        fail(
          open[MAX_DEPTH]!.offset,
          "",
          `lists and maps are nested more than ${MAX_DEPTH} deep here`,
          "A config needs a few levels at most: close the brackets, or dedent",
        );
      }
    }
  }
  for (const token of parser.end()) tokens.push(token);
  return tokens;
}

/** The last part of a path, for messages. */
function baseName(file: string): string {
  return file.slice(file.lastIndexOf("/") + 1);
}

/** A frame of the iterative build: put `node`'s value at `holder[slot]`, its position in `where`. */
interface Frame {
  node: unknown;
  holder: Record<string, unknown> | unknown[];
  slot: string | number;
  where: Where;
  parent: Frame | undefined;
  /** Offset of the outermost alias this value is reached through, if any. */
  via: number | undefined;
}

function toPlain(root: Node, text: string, fail: Fail): { value: unknown; where: Where } {
  const targets = resolveAliases(root, fail);
  const pathOf = (frame: Frame | undefined) => {
    const path: (string | number)[] = [];
    for (let f = frame; f?.parent; f = f.parent) path.unshift(f.slot);
    return showPath(path);
  };
  const box: Record<string, unknown> = {};
  const where: Where = { at: offsetOf(root) ?? 0 };
  const stack: Frame[] = [{
    node: root,
    holder: box,
    slot: "value",
    where,
    parent: undefined,
    via: undefined,
  }];
  let aliased = 0;

  while (stack.length > 0) {
    const frame = stack.pop()!;
    const { node, holder } = frame;
    const put = (v: unknown) => (holder as Record<string | number, unknown>)[frame.slot] = v;
    if (frame.via !== undefined && ++aliased > MAX_ALIASED_VALUES) {
      fail(
        frame.via,
        "",
        `the aliases (*name) in this file stand for more than ${MAX_ALIASED_VALUES} values in all`,
        "Write the values out instead of repeating them through aliases",
      );
    }
    if (isAlias(node)) {
      const at = offsetOf(node) ?? frame.where.at;
      stack.push({ ...frame, node: targets.get(node), via: frame.via ?? at });
    } else if (isScalar(node)) {
      const v = node.value;
      put(isPlainScalar(v) ? v : Symbol(describeScalar(v, node.tag)));
      if (node.range) frame.where.written = [node.range[0], node.range[1]];
    } else if (isMap(node) || isSeq(node)) {
      const unplain = node.tag ? UNPLAIN_COLLECTIONS[node.tag] : undefined;
      if (unplain) {
        put(Symbol(unplain));
        continue;
      }
      const children: Frame[] = [];
      const items = new Map<string, Where>();
      frame.where.items = items;
      if (isMap(node)) {
        const obj: Record<string, unknown> = Object.create(null);
        put(obj);
        addPairs(node.items, obj, frame, children, items);
      } else {
        const list: unknown[] = [];
        put(list);
        node.items.forEach((item, i) => {
          if (isPair(item)) {
            // `[a: 1]`: a flow list item that is a key: value pair is a map of one entry.
            const obj: Record<string, unknown> = Object.create(null);
            const itemWhere: Where = { at: offsetOf(item.key) ?? frame.where.at, items: new Map() };
            list.push(obj);
            items.set(String(i), itemWhere);
            const itemFrame: Frame = { ...frame, holder: list, slot: i, where: itemWhere, parent: frame };
            addPairs([item], obj, itemFrame, children, itemWhere.items!);
          } else {
            list.push(null);
            const itemWhere: Where = { at: offsetOf(item) ?? frame.where.at };
            items.set(String(i), itemWhere);
            children.push({
              node: item,
              holder: list,
              slot: i,
              where: itemWhere,
              parent: frame,
              via: frame.via,
            });
          }
        });
      }
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
    } else {
      put(null); // an empty value
    }
  }
  return { value: box["value"], where };

  function addPairs(
    pairs: readonly Pair<unknown, unknown>[],
    obj: Record<string, unknown>,
    frame: Frame,
    children: Frame[],
    items: Map<string, Where>,
  ) {
    for (const pair of pairs) {
      const keyAt = offsetOf(pair.key) ?? offsetOf(pair.value) ?? frame.where.at;
      const keyNode = isAlias(pair.key) ? targets.get(pair.key) : pair.key;
      if (keyNode !== null && keyNode !== undefined && !isScalar(keyNode)) {
        fail(keyAt, pathOf(frame), `a key must be a string; got ${describeNode(keyNode)} as a key`);
      }
      const v = keyNode?.value ?? null;
      if (!isPlainScalar(v)) {
        fail(keyAt, pathOf(frame), `a key must be a string; got ${describeScalar(v, keyNode?.tag)} as a key`);
      }
      // Keys as written: `1.50:` is "1.50", `~:` is "~" (the library would make them "1.5" and "").
      const key = typeof v === "string"
        ? v
        : keyNode?.range
        ? text.slice(keyNode.range[0], keyNode.range[1])
        : "";
      if (items.has(key)) fail(keyAt, "", "YAML syntax error: Map keys must be unique", "Keep one of them");
      const valueWhere: Where = { key: keyAt, at: offsetOf(pair.value) ?? keyAt };
      items.set(key, valueWhere);
      obj[key] = null;
      children.push({
        node: pair.value,
        holder: obj,
        slot: key,
        where: valueWhere,
        parent: frame,
        via: frame.via,
      });
    }
  }
}

/**
 * Each alias's anchored node: the last node with that anchor before it in document order, as YAML says.
 * An alias with none, or inside the node it names (a value that would contain itself), is an error.
 */
function resolveAliases(root: Node, fail: Fail): Map<unknown, Node> {
  const targets = new Map<unknown, Node>();
  const anchors = new Map<string, Node>();
  const open = new Set<unknown>();
  const stack: { node: unknown; leave?: true }[] = [{ node: root }];
  while (stack.length > 0) {
    const { node, leave } = stack.pop()!;
    if (leave) {
      open.delete(node);
    } else if (isAlias(node)) {
      const target = anchors.get(node.source);
      const at = offsetOf(node) ?? 0;
      if (!target) {
        fail(
          at,
          "",
          `YAML syntax error: the alias *${node.source} has no anchor &${node.source} before it`,
          `Define it first, e.g.  name: &${node.source} value   then use  *${node.source}  after it`,
        );
      }
      if (open.has(target)) {
        fail(
          at,
          "",
          `YAML syntax error: the alias *${node.source} is inside the value it names, which would contain itself`,
          "Fix the YAML at that position",
        );
      }
      targets.set(node, target);
    } else if (isPair(node)) {
      stack.push({ node: node.value }, { node: node.key });
    } else if (isMap(node) || isSeq(node) || isScalar(node)) {
      if (node.anchor) {
        anchors.set(node.anchor, node);
        open.add(node);
        stack.push({ node, leave: true });
      }
      if (!isScalar(node)) {
        for (let i = node.items.length - 1; i >= 0; i--) stack.push({ node: node.items[i] });
      }
    }
  }
  return targets;
}

function offsetOf(node: unknown): number | undefined {
  return (node as { range?: [number, number, number] | null } | null | undefined)?.range?.[0];
}

function isPlainScalar(v: unknown): v is string | number | boolean | null {
  return v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean";
}

/** What a scalar only a tag can give is, in words. */
function describeScalar(v: unknown, tag: string | undefined): string {
  if (v instanceof Uint8Array) return "binary data (!!binary)";
  if (v instanceof Date) return "a timestamp (!!timestamp)";
  const shown = tag?.startsWith(TAG) ? `!!${tag.slice(TAG.length)}` : tag;
  return `a ${typeof v} value${shown ? ` (${shown})` : ""}`;
}

function describeNode(node: unknown): string {
  const tag = (node as { tag?: string }).tag;
  if (tag && UNPLAIN_COLLECTIONS[tag]) return UNPLAIN_COLLECTIONS[tag];
  return isSeq(node) ? "a list" : isMap(node) ? "a map" : "a value";
}
