// Uploading a file as a data source, with progress (README "Data sources"): up to the API's inline
// limit as multipart/form-data to POST /data-sources/uploads; above it (or when the API answers 413),
// a presigned POST: the API creates the data source `awaiting_upload` with a form bound to its S3 key,
// size and type, and the browser sends the bytes straight to S3. XMLHttpRequest, not fetch: only it
// reports upload progress.
import { ApiError } from "./api.js";

// The API's default inline limit (4 MiB); a deployment that lowers it answers 413, and the file then
// goes the presigned way.
export const INLINE_LIMIT = 4 * 1024 * 1024;

// The media types a data source may have, by extension for browsers that give none (or a vague one):
// the presigned form is bound to the type declared here. The bytes decide in the end, on the server.
const TYPES = {
  txt: "text/plain", text: "text/plain", md: "text/markdown", markdown: "text/markdown", csv: "text/csv",
  json: "application/json", html: "text/html", htm: "text/html", pdf: "application/pdf",
};
const ALLOWED = new Set(Object.values(TYPES));

export const ACCEPT = Object.keys(TYPES).map((extension) => `.${extension}`).join(",");

export function mediaType(file) {
  const declared = (file.type || "").split(";")[0].trim().toLowerCase();
  if (ALLOWED.has(declared)) return declared;
  const extension = file.name.includes(".") ? file.name.split(".").pop().toLowerCase() : "";
  return TYPES[extension] || null;
}

// One request with upload progress: resolves {status, body} for any HTTP answer, rejects only when the
// connection fails.
function send(url, form, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => resolve({ status: request.status, body: request.responseText }));
    request.addEventListener("error", () => reject(new ApiError(0, "network_error", "The upload failed: the connection broke.")));
    request.send(form);
  });
}

function apiError(status, body) {
  let error = {};
  try {
    error = JSON.parse(body);
  } catch (e) {}
  return new ApiError(status, error.code || `http_${status}`, error.message || `The upload failed (HTTP ${status}).`);
}

async function inline(api, file, owner, onProgress) {
  const url = new URL(`${api.base}/data-sources/uploads`);
  for (const [name, value] of Object.entries(owner)) url.searchParams.set(name, value);
  const form = new FormData();
  form.append("file", file, file.name);
  const { status, body } = await send(url, form, api.headers(), onProgress);
  if (status === 201) return JSON.parse(body);
  throw apiError(status, body);
}

async function presigned(api, file, owner, onProgress) {
  const type = mediaType(file);
  if (!type) {
    throw new ApiError(415, "unsupported_media_type", `${file.name}: only text, Markdown, CSV, JSON, HTML and PDF files can be uploaded.`);
  }
  const created = await api.post("/data-sources/uploads", { name: file.name, mimeType: type, size: file.size }, owner);
  const form = new FormData();
  for (const [name, value] of Object.entries(created.upload.fields)) form.append(name, value);
  form.append("file", file, file.name); // last: S3 ignores fields after the file
  try {
    // No credential: the form's signed policy is the authorisation, and S3 is another origin.
    const { status } = await send(created.upload.url, form, {}, onProgress);
    if (status < 200 || status >= 300) {
      throw new ApiError(status, "upload_refused", `The storage refused ${file.name} (HTTP ${status}).`);
    }
  } catch (error) {
    // A data source whose bytes never arrive would wait a day for its expiry: remove it now.
    await api.del(`/data-sources/${created.id}`).catch(() => {});
    throw error;
  }
  const { upload, ...dataSource } = created;
  return dataSource;
}

// Uploads `file` for `owner` ({} for the signed-in user, {teamId}); onProgress(fraction, way) with
// way "inline" or "presigned". Resolves the new data source (status processing or awaiting_upload).
export async function uploadFile(api, file, owner, onProgress) {
  if (file.size <= INLINE_LIMIT) {
    try {
      return await inline(api, file, owner, (fraction) => onProgress(fraction, "inline"));
    } catch (error) {
      if (error.status !== 413) throw error;
    }
  }
  onProgress(0, "presigned");
  return presigned(api, file, owner, (fraction) => onProgress(fraction, "presigned"));
}
