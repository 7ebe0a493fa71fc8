/**
 * SVG -> PNG with resvg (@resvg/resvg-js, a prebuilt native module shipped in the npm
 * package). Text needs fonts: the system's are loaded (Debian's fonts-dejavu-core gives
 * DejaVu), and the generic families map to DejaVu when it is there.
 */
import { Resvg } from '@resvg/resvg-js';

export interface RasterOptions {
  /** Pixels per SVG pixel (2 gives a sharp image on a high-density screen). Default 2. */
  scale?: number;
  /** CSS colour behind the drawing; default white (transparent: 'transparent'). */
  background?: string;
}

/** Renders an SVG document to PNG bytes. */
export function svgToPng(svg: string, options: RasterOptions = {}): Buffer {
  const scale = options.scale ?? 2;
  if (!(scale > 0) || !Number.isFinite(scale)) throw new Error(`scale: expected a positive number, got ${scale}`);
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: options.background ?? 'white',
    font: {
      loadSystemFonts: true,
      defaultFontFamily: 'DejaVu Sans',
      sansSerifFamily: 'DejaVu Sans',
      serifFamily: 'DejaVu Serif',
      monospaceFamily: 'DejaVu Sans Mono',
    },
    logLevel: 'off',
  });
  return resvg.render().asPng();
}
