package io.outboxrelay.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A TCP proxy on loopback in front of a real server, for faults that close nothing: {@link #stall()}
 * freezes every connection through it (nothing more is read or forwarded either way, and a close
 * from either side is not passed on), which is what a client sees of a half-open connection, a
 * frozen server or a dead network path. {@link #drop()} goes on reading every connection and throws
 * the bytes away, so neither side's writes back up and neither hears from the other, as on a path
 * that loses every packet (the two sides' kernels still acknowledge what they got, which only a
 * packet filter could prevent, and this machine's kernel has none). {@link #heal()} lets new
 * connections through again; the frozen or dropped ones stay so until their client gives up on
 * them, as after a real network fault.
 * Written by hand because what it must do, hold connections open while passing nothing, is the one
 * thing general proxies are built to avoid.
 */
public final class StallingProxy implements AutoCloseable {

    private final ServerSocket listener;
    private final String targetHost;
    private final int targetPort;
    private final List<Link> links = new CopyOnWriteArrayList<>();
    private final AtomicInteger accepted = new AtomicInteger();
    private volatile boolean stalled;
    private volatile boolean dropping;
    private volatile boolean closed;

    private StallingProxy(ServerSocket listener, String targetHost, int targetPort) {
        this.listener = listener;
        this.targetHost = targetHost;
        this.targetPort = targetPort;
    }

    /** Listens on a free loopback port and forwards to {@code host:port}. */
    public static StallingProxy start(String host, int port) throws IOException {
        ServerSocket listener = new ServerSocket();
        listener.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
        StallingProxy proxy = new StallingProxy(listener, host, port);
        Thread acceptor = new Thread(proxy::accept, "stalling-proxy-" + listener.getLocalPort());
        acceptor.setDaemon(true);
        acceptor.start();
        return proxy;
    }

    public String host() {
        return "127.0.0.1";
    }

    public int port() {
        return listener.getLocalPort();
    }

    /** Freezes every connection, the open ones and any opened from now on, without closing one. */
    public void stall() {
        stalled = true;
        for (Link link : links) {
            link.frozen = true;
        }
    }

    /** From now on every connection's bytes, both ways, are read and thrown away; nothing is closed. */
    public void drop() {
        dropping = true;
        for (Link link : links) {
            link.dropped = true;
        }
    }

    /** Closes every connection through it at once, both sides, as a network path that resets them would; new ones pass. */
    public int cut() {
        int cut = 0;
        for (Link link : links) {
            link.close();
            links.remove(link);
            cut++;
        }
        return cut;
    }

    /** New connections pass again; the frozen and dropped ones stay as they are. */
    public void heal() {
        stalled = false;
        dropping = false;
    }

    /** Connections accepted so far: a client that gave up on a frozen one and reconnected shows here. */
    public int accepted() {
        return accepted.get();
    }

    @Override
    public void close() throws IOException {
        closed = true;
        listener.close();
        for (Link link : links) {
            link.close();
        }
    }

    private void accept() {
        while (!closed) {
            try {
                Socket client = listener.accept();
                accepted.incrementAndGet();
                Link link = new Link(client, stalled, dropping);
                links.add(link);
                link.start();
            }
            catch (IOException e) {
                if (!closed) {
                    // The listener failed for a reason of its own; the test using it will see connections refused.
                    System.err.println("stalling proxy on port " + port() + " stopped accepting: " + e);
                }
                return;
            }
        }
    }

    /** One client connection and its connection to the target, pumped both ways by two threads. */
    private final class Link {
        private final Socket client;
        private volatile Socket server;
        private volatile boolean frozen;
        private volatile boolean dropped;

        Link(Socket client, boolean frozen, boolean dropped) {
            this.client = client;
            this.frozen = frozen;
            this.dropped = dropped;
        }

        void start() {
            Thread t = new Thread(() -> {
                try {
                    // A connection opened while stalled waits before it even reaches the server, as a dead path would.
                    while (frozen && !closed) {
                        Thread.sleep(50);
                    }
                    if (dropped) {
                        // Opened while dropping: it never reaches the server, and what the client sends is lost.
                        drain(client);
                        return;
                    }
                    server = new Socket(targetHost, targetPort);
                    Thread back = new Thread(() -> pump(server, client), "stalling-proxy-in");
                    back.setDaemon(true);
                    back.start();
                    pump(client, server);
                }
                catch (IOException | InterruptedException e) {
                    close();
                }
            }, "stalling-proxy-out");
            t.setDaemon(true);
            t.start();
        }

        private void pump(Socket from, Socket to) {
            byte[] buffer = new byte[16 * 1024];
            try {
                // Not closed here: closing a socket's stream closes the socket, which a frozen link must not do.
                InputStream in = from.getInputStream();
                OutputStream out = to.getOutputStream();
                while (!closed) {
                    waitWhileFrozen();
                    int n = in.read(buffer);
                    if (n < 0) {
                        break;
                    }
                    waitWhileFrozen();
                    if (!dropped) {
                        out.write(buffer, 0, n);
                        out.flush();
                    }
                }
            }
            catch (IOException | InterruptedException e) {
                // One side went away; the other is closed below, unless frozen or dropped.
            }
            waitWhileFrozenQuietly();
            if (dropped) {
                // A lost path passes no close on either: the other side hears nothing, as it heard nothing else.
                waitUntilClosedQuietly();
            }
            close();
        }

        /** Reads and throws away until the proxy closes. */
        private void drain(Socket from) {
            byte[] buffer = new byte[16 * 1024];
            try {
                InputStream in = from.getInputStream();
                while (!closed && in.read(buffer) >= 0) {
                    // Thrown away.
                }
            }
            catch (IOException e) {
                // The client gave up.
            }
            waitUntilClosedQuietly();
            close();
        }

        private void waitUntilClosedQuietly() {
            try {
                while (!closed) {
                    Thread.sleep(50);
                }
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        /** Frozen is for good: nothing is read, nothing forwarded, nothing closed, until the proxy itself closes. */
        private void waitWhileFrozen() throws InterruptedException {
            while (frozen && !closed) {
                Thread.sleep(50);
            }
        }

        private void waitWhileFrozenQuietly() {
            try {
                waitWhileFrozen();
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        void close() {
            closeQuietly(client);
            closeQuietly(server);
        }

        private void closeQuietly(Socket s) {
            try {
                if (s != null) {
                    s.close();
                }
            }
            catch (IOException ignored) {
                // Already gone.
            }
        }
    }
}
