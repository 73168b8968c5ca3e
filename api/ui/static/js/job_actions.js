// Writes shared by the jobs list and a job's page.
import { api, workspacePath } from "./api.js";

const jobPath = (jobId, rest = "") => workspacePath(`/sync-jobs/${encodeURIComponent(jobId)}${rest}`);

// POST .../enable or /disable where the server has them; older servers only have toggle, so read the job
// first and flip it only if it is not already as wanted, conditional on the version read.
export async function setEnabled(jobId, enabled) {
  try {
    return await api(jobPath(jobId, enabled ? "/enable" : "/disable"), { method: "POST" });
  } catch (error) {
    if (!error.missingEndpoint) throw error;
  }
  const job = await api(jobPath(jobId));
  if (job.enabled === enabled) return job;
  return api(jobPath(jobId, "/toggle"), { method: "POST", ifMatch: job.version });
}

export function runNow(jobId) {
  return api(jobPath(jobId, "/run"), { method: "POST" });
}

export function cancelRun(jobId, executionId) {
  return api(jobPath(jobId, `/executions/${encodeURIComponent(executionId)}/cancel`), { method: "POST" });
}

export { jobPath };
