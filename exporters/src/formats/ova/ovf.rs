//! The OVF 1.x envelope: a schema-valid single-disk VM (formats.md §3.2) with the product
//! properties of the export. Fixed text, LF line endings, no dates, no random ids.

use diskimg::xml::{self, Disallowed, Whitespace};

use crate::format::{ExportOptions, Firmware};

/// What the envelope describes.
#[derive(Debug, Clone)]
pub struct OvfParams<'a> {
    /// Export options (name, firmware, properties).
    pub options: &'a ExportOptions,
    /// Member name of the disk (`NAME.vmdk`).
    pub disk_file: &'a str,
    /// Exact size of the disk file.
    pub disk_size: u64,
    /// Virtual disk size in bytes.
    pub capacity: u64,
}

/// Escapes text for XML element content and attribute values (XML 1.0: characters that
/// cannot appear at all become U+FFFD).
pub fn xml_escape(text: &str) -> String {
    xml::escape(text, Whitespace::Reference, Disallowed::Replace)
}

/// The `.ovf` text.
pub fn envelope(p: &OvfParams<'_>) -> String {
    let name = xml_escape(&p.options.name);
    let href = xml_escape(p.disk_file);
    let (disk_size, capacity) = (p.disk_size, p.capacity);
    let firmware = match p.options.firmware {
        Firmware::Uefi => concat!(
            "      <vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"efi\"/>\n",
            "      <vmw:Config ovf:required=\"false\" vmw:key=\"bootOptions.efiSecureBootEnabled\" vmw:value=\"false\"/>\n",
        ),
        Firmware::Bios => {
            "      <vmw:Config ovf:required=\"false\" vmw:key=\"firmware\" vmw:value=\"bios\"/>\n"
        }
    };
    let mut properties = String::new();
    for (key, value) in &p.options.properties {
        properties.push_str(&format!(
            "      <Property ovf:key=\"{}\" ovf:type=\"string\" ovf:value=\"{}\"/>\n",
            xml_escape(key),
            xml_escape(value)
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="{href}" ovf:id="file1" ovf:size="{disk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A virtual machine</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="94" vmw:osType="ubuntu64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-15</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>2048MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>2048</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on "VM Network"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
{firmware}    </VirtualHardwareSection>
    <ProductSection>
      <Info>Information about the installed software</Info>
      <Product>{name}</Product>
{properties}    </ProductSection>
  </VirtualSystem>
</Envelope>
"#
    )
}

#[cfg(test)]
mod tests {
    use diskimg::ova::file_references;

    use super::*;

    #[test]
    fn envelope_escapes_and_references_parse_back() {
        let mut options = ExportOptions::new("n-1");
        options.properties = vec![("k8s".into(), "v1.30 <\"&'>\n".into())];
        options.firmware = Firmware::Bios;
        let ovf = envelope(&OvfParams {
            options: &options,
            disk_file: "n-1.vmdk",
            disk_size: 72704,
            capacity: 1 << 22,
        });
        assert!(ovf.contains("ovf:value=\"v1.30 &lt;&quot;&amp;&apos;&gt;&#10;\""));
        assert!(ovf.contains("vmw:value=\"bios\""));
        assert!(!ovf.contains("efi"));
        assert!(!ovf.contains('\r'));
        assert_eq!(
            file_references(&ovf),
            vec![("n-1.vmdk".to_string(), Some("72704".to_string()))]
        );
        assert_eq!(xml::unescape(&xml_escape("a&amp;<b>\t")), "a&amp;<b>\t");
        assert_eq!(xml_escape("\u{1}"), "\u{fffd}");
    }
}
