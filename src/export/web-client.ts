/**
 * The script of the one-page classifier (`pcdarts export --format web`), run in the browser.
 * web.ts writes `classifierPage.toString()` into classifier.js, so this function must be self-
 * contained: no imports, only the globals the page defines (`ort` from onnxruntime-web's
 * ort.wasm.min.js; on file://, PCDARTS_MODEL_BASE64, PCDARTS_ORT_GLUE and PCDARTS_ORT_WASM
 * from model.js and ort/embedded.js, since a page opened from a file can fetch nothing).
 *
 * The input transform is image-input.ts's, written again for a canvas: the same geometry
 * (short side resized, centre crop, padding), Pillow's luma for grey, the same float32
 * normalisation. An image that needs no resizing (already the dataset's size) gives exactly
 * `pcdarts predict`'s input; a resize is the browser's (high-quality smoothing), close to but
 * not bit-equal with libvips'.
 */

/** What the page knows about the model (index.html's #model-info JSON). */
export interface WebModelInfo {
  network: string;
  dataset: string | null;
  classNames: string[];
  transform: { kind: 'folder' | 'fit' | 'fashion-mnist'; channels: 1 | 3; resize: number; crop: number; pad: number; size: number; mean: number[]; std: number[] };
  top: number;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export function classifierPage(): void {
  const ortGlobal = (globalThis as any).ort;
  const $ = (id: string): HTMLElement => document.getElementById(id)!;
  const info = JSON.parse($('model-info').textContent!) as WebModelInfo;
  const status = $('status');
  const setState = (state: string, message: string): void => {
    document.body.dataset.state = state;
    status.textContent = message;
  };

  const fromBase64 = (text: string): Uint8Array => {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  };
  const loadScript = (src: string): Promise<void> => new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.appendChild(script);
  });

  /** onnxruntime-web's WebAssembly backend, one thread, and the model, from files beside the page. */
  async function createSession(): Promise<any> {
    const env = ortGlobal.env.wasm;
    env.numThreads = 1;
    env.proxy = false;
    let model: Uint8Array;
    if (location.protocol === 'file:') {
      // No fetch from file://: the glue module becomes a blob URL, the binary and model come as scripts.
      await loadScript('ort/embedded.js');
      await loadScript('model.js');
      const g = globalThis as any;
      env.wasmBinary = fromBase64(g.PCDARTS_ORT_WASM);
      env.wasmPaths = { mjs: URL.createObjectURL(new Blob([g.PCDARTS_ORT_GLUE], { type: 'text/javascript' })) };
      model = fromBase64(g.PCDARTS_MODEL_BASE64);
    } else {
      env.wasmPaths = new URL('ort/', location.href).href;
      const response = await fetch('model.onnx');
      if (!response.ok) throw new Error(`model.onnx: HTTP ${response.status}`);
      model = new Uint8Array(await response.arrayBuffer());
    }
    return ortGlobal.InferenceSession.create(model, { executionProviders: ['wasm'] });
  }

  const roundHalfEven = (x: number): number => {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };

  /** The network input of a decoded image: image-input.ts's imageInput. */
  function imageInput(bitmap: ImageBitmap): Float32Array {
    const t = info.transform;
    const { crop, pad, size, channels } = t;
    const canvas = document.createElement('canvas');
    canvas.width = crop;
    canvas.height = crop;
    const context = canvas.getContext('2d', { willReadFrequently: true })!;
    context.imageSmoothingEnabled = true;
    context.imageSmoothingQuality = 'high';
    const { width, height } = bitmap;
    if (width === crop && height === crop && t.kind !== 'folder') {
      context.drawImage(bitmap, 0, 0);
    } else {
      const [short, long] = width <= height ? [width, height] : [height, width];
      const newLong = Math.trunc((t.resize * long) / short);
      const resizeWidth = width <= height ? t.resize : newLong;
      const resizeHeight = width <= height ? newLong : t.resize;
      const top = roundHalfEven((resizeHeight - crop) / 2);
      const left = roundHalfEven((resizeWidth - crop) / 2);
      context.drawImage(bitmap, -left, -top, resizeWidth, resizeHeight);
    }
    const rgba = context.getImageData(0, 0, crop, crop).data;
    const f = Math.fround;
    const table = new Float32Array(channels * 256);
    for (let c = 0; c < channels; c++) {
      for (let p = 0; p < 256; p++) table[c * 256 + p] = f(f(p / 255) - f(t.mean[c])) / f(t.std[c]);
    }
    const plane = size * size;
    const out = new Float32Array(channels * plane);
    for (let c = 0; c < channels; c++) out.fill(table[c * 256], c * plane, (c + 1) * plane);
    for (let y = 0; y < crop; y++) {
      for (let x = 0; x < crop; x++) {
        const o = 4 * (y * crop + x);
        const at = (y + pad) * size + x + pad;
        if (channels === 1) out[at] = table[(rgba[o] * 19595 + rgba[o + 1] * 38470 + rgba[o + 2] * 7471 + 0x8000) >>> 16];
        else for (let c = 0; c < 3; c++) out[c * plane + at] = table[c * 256 + rgba[o + c]];
      }
    }
    return out;
  }

  function showTop(logits: Float32Array, file: string): void {
    let max = -Infinity;
    for (const v of logits) max = Math.max(max, v);
    let sum = 0;
    const exps = Array.from(logits, (v) => {
      const e = Math.exp(v - max);
      sum += e;
      return e;
    });
    const scores = exps.map((e, index) => ({ index, probability: e / sum, logit: logits[index] }));
    scores.sort((a, b) => b.logit - a.logit || a.index - b.index);
    const list = $('top');
    list.replaceChildren();
    for (const s of scores.slice(0, Math.min(info.top, scores.length))) {
      const item = document.createElement('li');
      item.dataset.index = String(s.index);
      item.dataset.probability = String(s.probability);
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = info.classNames[s.index];
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${(100 * s.probability).toFixed(1)}%`;
      const value = document.createElement('span');
      value.className = 'probability';
      value.textContent = `${(100 * s.probability).toFixed(2)} %`;
      const track = document.createElement('span');
      track.className = 'track';
      track.appendChild(bar);
      item.append(name, track, value);
      list.appendChild(item);
    }
    $('result').dataset.file = file;
    setState('done', `${file}: ${info.classNames[scores[0].index]} (${(100 * scores[0].probability).toFixed(2)} %)`);
  }

  let session: any = null;
  const ready = createSession().then((s) => {
    session = s;
    setState('ready', 'Pick or drop an image.');
  }, (error: unknown) => {
    setState('error', `Cannot start onnxruntime-web: ${error instanceof Error ? error.message : String(error)}`);
  });

  async function classify(file: File): Promise<void> {
    await ready;
    if (session === null) return;
    setState('busy', `Classifying ${file.name}…`);
    try {
      const bitmap = await createImageBitmap(file, { imageOrientation: 'from-image', premultiplyAlpha: 'none' });
      const preview = $('preview') as HTMLCanvasElement;
      const scale = 256 / Math.max(bitmap.width, bitmap.height); // small images shown enlarged (pixelated)
      preview.width = Math.max(1, Math.round(bitmap.width * scale));
      preview.height = Math.max(1, Math.round(bitmap.height * scale));
      preview.getContext('2d')!.drawImage(bitmap, 0, 0, preview.width, preview.height);
      const x = imageInput(bitmap);
      (globalThis as any).pcdartsLastInput = x; // the network input of the last image (for tests and debugging)
      bitmap.close();
      const t = info.transform;
      const result = await session.run({ input: new ortGlobal.Tensor('float32', x, [1, t.channels, t.size, t.size]) });
      showTop(result.logits.data as Float32Array, file.name);
    } catch (error) {
      setState('error', `${file.name}: cannot classify it (${error instanceof Error ? error.message : String(error)})`);
    }
  }

  const picker = $('file') as HTMLInputElement;
  picker.addEventListener('change', () => {
    if (picker.files && picker.files.length > 0) void classify(picker.files[0]);
  });
  const zone = $('drop');
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    if (file) void classify(file);
  });
}
