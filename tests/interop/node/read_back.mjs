// Reads back, through Node BullMQ, a job that jobqueue put on `job-queue` and the entries
// on `job-dlq`, and prints them as one JSON line. Usage: node read_back.mjs REDIS_URL JOB_ID
import { Queue } from 'bullmq';

const [url, jobId] = process.argv.slice(2);
const where = new URL(url);
const connection = {
  host: where.hostname,
  port: Number(where.port || 6379),
  db: Number(where.pathname.slice(1) || 0),
};
const queue = new Queue('job-queue', { connection });
const dlq = new Queue('job-dlq', { connection });
try {
  const job = await queue.getJob(jobId);
  const entries = await dlq.getJobs(['waiting']);
  console.log(JSON.stringify({
    job: job && {
      id: job.id,
      name: job.name,
      data: job.data,
      opts: job.opts,
      state: await job.getState(),
      attemptsMade: job.attemptsMade,
    },
    dlq: entries.map((entry) => ({ name: entry.name, data: entry.data })),
  }));
} finally {
  await queue.close();
  await dlq.close();
}
