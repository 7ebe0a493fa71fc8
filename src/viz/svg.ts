/**
 * Small text operations on SVG documents, so that several drawings can share one file (side
 * by side) or one HTML page (inlined) without their ids colliding.
 */

/** Drops the XML declaration, DOCTYPE and comments that precede the root <svg> element. */
export function svgElement(svg: string): string {
  const start = svg.indexOf('<svg');
  if (start < 0) throw new Error('not an SVG document: no <svg> element');
  return svg.slice(start).trim();
}

/**
 * Prefixes every id (and every reference to one: url(#..), href="#..") with `prefix-`, so
 * that drawings inlined into one page keep distinct ids (clip paths, gradients).
 */
export function prefixSvgIds(svg: string, prefix: string): string {
  return svg
    .replace(/\bid="([^"]+)"/g, (_, id: string) => `id="${prefix}-${id}"`)
    .replace(/url\(#([^)]+)\)/g, (_, id: string) => `url(#${prefix}-${id})`)
    .replace(/\b((?:xlink:)?href)="#([^"]+)"/g, (_, attribute: string, id: string) => `${attribute}="#${prefix}-${id}"`);
}

export interface SvgSize {
  /** In CSS pixels (1pt = 4/3 px). */
  width: number;
  height: number;
}

const UNIT_TO_PX: Record<string, number> = { '': 1, px: 1, pt: 4 / 3, pc: 16, in: 96, cm: 96 / 2.54, mm: 96 / 25.4 };

function lengthInPx(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const match = /^\s*([0-9.]+)\s*([a-z]*)\s*$/.exec(value);
  if (match === null || !(match[2]! in UNIT_TO_PX)) return undefined;
  return Number(match[1]) * UNIT_TO_PX[match[2]!]!;
}

function rootAttribute(svg: string, name: string): string | undefined {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0] ?? '';
  return new RegExp(`\\s${name}="([^"]*)"`).exec(root)?.[1];
}

/** Width and height of the root element, from its width/height or else its viewBox. */
export function svgSize(svg: string): SvgSize {
  const viewBox = rootAttribute(svg, 'viewBox')?.trim().split(/[\s,]+/).map(Number);
  const width = lengthInPx(rootAttribute(svg, 'width')) ?? viewBox?.[2];
  const height = lengthInPx(rootAttribute(svg, 'height')) ?? viewBox?.[3];
  if (width === undefined || height === undefined || !(width > 0) || !(height > 0)) {
    throw new Error('SVG without a usable width/height or viewBox');
  }
  return { width, height };
}

/**
 * One SVG document holding the given ones side by side, left to right, top-aligned, on a
 * white background, each nested as its own <svg> (its ids prefixed with `part<k>`).
 */
export function svgSideBySide(svgs: readonly string[], gapPx = 24): string {
  const parts = svgs.map((svg) => svgElement(svg));
  const sizes = parts.map((svg) => svgSize(svg));
  const width = sizes.reduce((sum, size) => sum + size.width, 0) + gapPx * Math.max(0, parts.length - 1);
  const height = Math.max(...sizes.map((size) => size.height));
  let x = 0;
  const nested = parts.map((svg, k) => {
    const size = sizes[k]!;
    const root = /<svg\b[^>]*>/.exec(svg)![0];
    // Replace the nested root's own size and position with its place in the whole.
    const attributes = root
      .replace(/\s(?:width|height|x|y)="[^"]*"/g, '')
      .replace(/^<svg/, `<svg x="${x.toFixed(2)}" y="0" width="${size.width.toFixed(2)}" height="${size.height.toFixed(2)}"`);
    x += size.width + gapPx;
    return prefixSvgIds(attributes + svg.slice(root.length), `part${k}`);
  });
  const w = width.toFixed(2);
  const h = height.toFixed(2);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" ` +
    `width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">\n` +
    `<rect width="100%" height="100%" fill="white"/>\n${nested.join('\n')}\n</svg>\n`
  );
}

/** Escapes text for HTML/XML element content and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
