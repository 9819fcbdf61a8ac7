// automerge-repo's side of the comparison (Node 20, packages from bench/compare/package.json).
// One Automerge document per proposal ({title, status, driver, text, positions}) plus an
// index document listing their URLs, as automerge-repo apps do. Server: a Repo with the
// WebSocketServerAdapter and NodeFSStorageAdapter; client: a Repo with the
// WebSocketClientAdapter and its own NodeFSStorageAdapter. Same commands as the other
// drivers (see circle_node_driver.py); results are one JSON line.
import fs from "node:fs"
import path from "node:path"
import readline from "node:readline"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import {
  WebSocketClientAdapter,
  WebSocketServerAdapter,
} from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const [command, ...args] = process.argv.slice(2)
const now = () => performance.now() / 1000
const sameHeads = (a, b) => a && b && a.length === b.length && a.every((h, i) => h === b[i])

// find(), retried when a peer answers "unavailable" while the server is still busy with
// earlier requests (seen under load with 1,000 parallel finds); counted in the output.
let retries = 0
async function find(repo, url) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await repo.find(url)
    } catch (err) {
      if (attempt >= 20 || !String(err).includes("unavailable")) throw err
      retries++
      await new Promise(r => setTimeout(r, 50 * (attempt + 1)))
    }
  }
}

async function stdinLines(onLine) {
  const rl = readline.createInterface({ input: process.stdin })
  for await (const line of rl) {
    if ((await onLine(line.trim())) === false) break
  }
}

async function seed(workloadPath, dir) {
  const start = now()
  const data = JSON.parse(fs.readFileSync(workloadPath, "utf8"))
  const repo = new Repo({ storage: new NodeFSStorageAdapter(dir), network: [] })
  const urls = data.proposals.map(p => {
    const h = repo.create({
      title: p.title,
      status: p.status,
      driver: p.driver,
      text: p.text,
      positions: p.positions,
    })
    return h.url
  })
  const index = repo.create({ docs: urls })
  await repo.flush()
  fs.writeFileSync(path.join(dir, "index-url"), index.url)
  await repo.shutdown()
  return { seconds: now() - start, docs: urls.length }
}

// The heads the client must reach: the sync command's end condition.
async function writeHeads(repo, urls, dir) {
  const heads = {}
  for (const url of urls) heads[url] = (await repo.find(url)).heads()
  fs.writeFileSync(path.join(dir, "heads.json"), JSON.stringify(heads))
}

async function serve(dir) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 })
  await new Promise(resolve => wss.on("listening", resolve))
  const repo = new Repo({
    storage: new NodeFSStorageAdapter(dir),
    network: [new WebSocketServerAdapter(wss)],
    sharePolicy: async () => true,
  })
  const index = await repo.find(fs.readFileSync(path.join(dir, "index-url"), "utf8"))
  const urls = index.doc().docs
  await writeHeads(repo, urls, dir)
  console.log(`READY ${wss.address().port}`)
  await stdinLines(async line => {
    if (line.startsWith("edit ")) {
      const edits = JSON.parse(fs.readFileSync(line.slice(5), "utf8"))
      for (const [i, text] of edits) {
        const h = await repo.find(urls[i])
        h.change(d => {
          d.text = text
        })
      }
      await writeHeads(repo, urls, dir)
      await repo.flush()
      console.log("OK")
    } else if (line === "stop") {
      return false
    }
  })
  await repo.shutdown()
  wss.close()
  process.exit(0)
}

// A client repo; `received` tracks which documents got a sync message from the server.
function clientRepo(dir, port) {
  fs.mkdirSync(dir, { recursive: true })
  const repo = new Repo({
    storage: new NodeFSStorageAdapter(dir),
    network: [new WebSocketClientAdapter(`ws://127.0.0.1:${port}`)],
    sharePolicy: async () => true,
  })
  const received = new Set()
  repo.networkSubsystem.on("message", msg => {
    if (msg.type === "sync" || msg.type === "request") received.add(msg.documentId)
  })
  return { repo, received }
}

// Synced: every document has the server's heads (which the server wrote to heads.json)
// and the server has answered in this session. Requiring an answer per document would
// hang: a server whose saved sync state says the client is up to date sends nothing.
async function sync(dir, port, serverDir) {
  const start = now()
  const expected = JSON.parse(fs.readFileSync(path.join(serverDir, "heads.json"), "utf8"))
  const indexUrl = fs.readFileSync(path.join(serverDir, "index-url"), "utf8")
  const { repo, received } = clientRepo(dir, port)
  const index = await find(repo, indexUrl)
  const urls = index.doc().docs
  const handles = await Promise.all(urls.map(url => find(repo, url)))
  const deadline = Date.now() + 600_000
  for (;;) {
    const done =
      received.size > 0 && handles.every(h => sameHeads(h.heads(), expected[h.url]))
    if (done) break
    if (Date.now() > deadline) throw new Error("sync did not converge")
    await new Promise(r => setTimeout(r, 5))
  }
  await repo.flush()
  const seconds = now() - start
  await repo.shutdown()
  return { seconds, docs: handles.length, find_retries: retries }
}

async function live(dir, port, serverDir) {
  const indexUrl = fs.readFileSync(path.join(serverDir, "index-url"), "utf8")
  const { repo } = clientRepo(dir, port)
  const index = await find(repo, indexUrl)
  const urls = index.doc().docs
  const handles = await Promise.all(urls.map(url => find(repo, url)))
  console.log("SYNCED")
  await stdinLines(async line => {
    if (!line.startsWith("expect ")) return false
    const [, i, ...rest] = line.split(" ")
    const want = rest.join(" ")
    const h = handles[Number(i)]
    if (h.doc().text !== want) {
      await new Promise(resolve => {
        const check = () => {
          if (h.doc().text === want) {
            h.off("change", check)
            resolve()
          }
        }
        h.on("change", check)
      })
    }
    console.log("SEEN")
  })
  await repo.shutdown()
  process.exit(0)
}

async function load(dir, serverDir) {
  const start = now()
  const indexUrl = fs.readFileSync(path.join(serverDir, "index-url"), "utf8")
  const repo = new Repo({ storage: new NodeFSStorageAdapter(dir), network: [] })
  const index = await repo.find(indexUrl)
  const handles = await Promise.all(index.doc().docs.map(url => repo.find(url)))
  const docs = handles.filter(h => typeof h.doc().text === "string").length
  const seconds = now() - start
  await repo.shutdown()
  return { seconds, docs }
}

let result
if (command === "seed") result = await seed(args[0], args[1])
else if (command === "serve") await serve(args[0])
else if (command === "sync") result = await sync(args[0], Number(args[1]), args[2])
else if (command === "live") await live(args[0], Number(args[1]), args[2])
else if (command === "load") result = await load(args[0], args[1])
else throw new Error(`unknown command ${command}`)
if (result) console.log(JSON.stringify(result))
process.exit(0)
