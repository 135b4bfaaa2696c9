package io.outboxrelay.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A throw-away certificate authority, a server certificate for {@code localhost} only (so that
 * connecting by {@code 127.0.0.1} fails host-name verification) and a client certificate, made with
 * the openssl command line in a directory of the test's. The client key is also written as PKCS#8
 * DER ({@code client.pk8}), the form pgjdbc reads.
 */
public record TestCertificates(Path dir) {

    /** The password of the PKCS#12 stores (a test's, not a secret). */
    public static final String STORE_PASSWORD = "changeit";

    public static TestCertificates create(Path dir, String clientName) throws IOException {
        Files.createDirectories(dir);
        String d = dir.toString();
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=outbox-relay test CA", "-keyout", d + "/ca.key",
                "-out", d + "/ca.crt");
        Files.writeString(dir.resolve("server.ext"), "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n");
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", d + "/server.key", "-out", d + "/server.csr");
        openssl("x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.crt", "-CAkey", d + "/ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", d + "/server.ext", "-out", d + "/server.crt");
        Files.writeString(dir.resolve("client.ext"), "extendedKeyUsage=clientAuth\n");
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + clientName, "-keyout", d + "/client.key", "-out", d + "/client.csr");
        openssl("x509", "-req", "-in", d + "/client.csr", "-CA", d + "/ca.crt", "-CAkey", d + "/ca.key", "-CAcreateserial", "-days", "2",
                "-extfile", d + "/client.ext", "-out", d + "/client.crt");
        openssl("pkcs8", "-topk8", "-inform", "PEM", "-outform", "DER", "-nocrypt", "-in", d + "/client.key", "-out", d + "/client.pk8");
        openssl("pkcs12", "-export", "-in", d + "/client.crt", "-inkey", d + "/client.key", "-name", "client", "-passout", "pass:" + STORE_PASSWORD,
                "-out", d + "/client.p12");
        ServerControl.run("keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", d + "/ca.crt", "-storetype", "PKCS12",
                "-keystore", d + "/trust.p12", "-storepass", STORE_PASSWORD);
        return new TestCertificates(dir);
    }

    public Path caCert() {
        return dir.resolve("ca.crt");
    }

    public Path serverCert() {
        return dir.resolve("server.crt");
    }

    public Path serverKey() {
        return dir.resolve("server.key");
    }

    public Path clientCert() {
        return dir.resolve("client.crt");
    }

    /** The client key as pgjdbc reads it (PKCS#8, DER). */
    public Path clientKeyPk8() {
        return dir.resolve("client.pk8");
    }

    /** The client certificate and key as a PKCS#12 key store ({@link #STORE_PASSWORD}). */
    public Path clientKeyStore() {
        return dir.resolve("client.p12");
    }

    /** A PKCS#12 trust store holding the CA ({@link #STORE_PASSWORD}). */
    public Path trustStore() {
        return dir.resolve("trust.p12");
    }

    /** An SSL context that trusts the CA only. */
    public javax.net.ssl.SSLContext sslContext() throws Exception {
        java.security.KeyStore trust = java.security.KeyStore.getInstance("PKCS12");
        try (java.io.InputStream in = Files.newInputStream(trustStore())) {
            trust.load(in, STORE_PASSWORD.toCharArray());
        }
        javax.net.ssl.TrustManagerFactory tmf = javax.net.ssl.TrustManagerFactory.getInstance(javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        javax.net.ssl.SSLContext context = javax.net.ssl.SSLContext.getInstance("TLS");
        context.init(null, tmf.getTrustManagers(), null);
        return context;
    }

    private static void openssl(String... args) {
        String[] command = new String[args.length + 1];
        command[0] = "openssl";
        System.arraycopy(args, 0, command, 1, args.length);
        ServerControl.run(command);
    }
}
